"""The dashboard's endpoints: the page, files on both sides, conflicts, counts, connection
snippets, the charts' history and Resume. Mounted by `filesim.runtime.http.build_app`, behind
the same `RequestGuard` as the rest of the API.

    GET    /                                   the dashboard page
    GET    /static/...                         its assets
    GET    /api/servers/{name}/files           ?path=REF&offset&limit&q&state: one page
    DELETE /api/servers/{name}/files           ?path=REF: delete from the tester's folder
    GET    /api/servers/{name}/files/content   ?path=REF&side=folder|export: download
    PUT    /api/servers/{name}/files/content   ?path=REF: upload into the tester's folder
    POST   /api/servers/{name}/folders         {"path": REF}: a new folder there
    GET    /api/servers/{name}/conflicts       conflict copies with the version that won
    GET    /api/servers/{name}/connect         mount commands, PV/PVC YAML
    POST   /api/servers/{name}/resume          {}: lift a mass-deletion halt
    GET    /api/counts                         files on each side of every server
    GET    /api/history                        ?server=NAME: the charts' samples

REF is a path's bytes percent-encoded (see `dashboard.model`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol
from urllib.parse import quote, unquote_to_bytes

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from filesim.errors import FilesimError
from filesim.events import Event, EventBus
from filesim.runtime.dashboard import listing, page
from filesim.runtime.dashboard.connect import PvRenderer, connect_doc
from filesim.runtime.dashboard.files import PathError, Tree, split_path
from filesim.runtime.dashboard.model import FileCounts, FileListing
from filesim.runtime.guard import GuardPolicy, Refused, json_body
from filesim.runtime.history import MetricsHistory
from filesim.runtime.model import RuntimeDoc, ServerState

CHUNK = 1 << 20
Handler = Callable[[Request], Awaitable[Response]]


class DashboardRuntime(Protocol):
    """What the dashboard needs of a running topology (`TopologyRunner` is one)."""

    @property
    def events(self) -> EventBus: ...

    history: MetricsHistory
    pv_renderer: PvRenderer | None

    def describe(self) -> RuntimeDoc: ...

    def resume(self, name: str) -> None: ...


def _json(doc: BaseModel, status: int = 200) -> Response:
    return Response(doc.model_dump_json(), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status, media_type="application/json")


def _answers(handler: Handler) -> Handler:
    """Errors a user can act on become {"error": ...} with the right status."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (PathError, Refused) as exc:
            return _error(exc.status, str(exc))
        except KeyError as exc:
            return _error(404, str(exc.args[0]) if exc.args else "not found")
        except FilesimError as exc:
            return _error(409, str(exc))

    return wrapped


def query_bytes(request: Request, name: str) -> bytes | None:
    """A query parameter as the bytes it percent-encodes (Starlette would decode it as UTF-8,
    losing names that are not)."""
    for pair in request.scope.get("query_string", b"").split(b"&"):
        key, _, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == name.encode():
            return unquote_to_bytes(value.replace(b"+", b" "))
    return None


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        raise Refused(400, f"{name} must be an integer") from None


def dashboard_routes(runtime: DashboardRuntime, policy: GuardPolicy) -> list[BaseRoute]:
    counts_cache = listing.CountCache()
    scans = listing.ListingCache()
    # Any event of a server may change what its Files view shows (called from any thread).
    runtime.events.subscribe(lambda event: scans.forget(event.server))

    def server(request: Request) -> ServerState:
        return runtime.describe().server(request.path_params["name"])

    def parts_of(request: Request) -> tuple[bytes, ...]:
        return split_path(query_bytes(request, "path") or b"")

    def emit(kind: str, name: str, parts: tuple[bytes, ...], size: int | None = None) -> None:
        path = b"/".join(parts).decode("utf-8", "surrogateescape")
        runtime.events.emit(Event(kind, name, "folder", path, size, {"by": "dashboard"}))

    async def index(request: Request) -> Response:
        return page.page(policy.token)

    @_answers
    async def files(request: Request) -> Response:
        s, parts = server(request), parts_of(request)
        if request.method == "DELETE":
            kind = await asyncio.to_thread(Tree(s.folder).remove, parts)
            emit("dashboard.delete", s.name, parts)  # (the event also drops cached scans)
            return Response(json.dumps({"deleted": kind}), 200, media_type="application/json")
        q = request.query_params
        offset, limit = _int(request, "offset", 0), _int(request, "limit", 200)
        query, state = q.get("q", ""), q.get("state", "")

        def page() -> FileListing:
            return listing.page_of(scans.scan(s, parts), offset, limit, query, state)

        return _json(await asyncio.to_thread(page))

    @_answers
    async def content(request: Request) -> Response:
        s, parts = server(request), parts_of(request)
        if request.method == "PUT":
            return await _upload(request, s, parts)
        side = request.query_params.get("side", "folder")
        if side not in ("folder", "export"):
            raise Refused(400, "side must be folder or export")
        fd, size = await asyncio.to_thread(Tree(s.folder if side == "folder" else s.store)
                                           .open_file, parts)  # fmt: skip
        name = quote(parts[-1], safe="")
        headers = {
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Content-Length": str(size), "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox", "Cache-Control": "no-store",
        }  # fmt: skip
        return StreamingResponse(_read(fd), media_type="application/octet-stream", headers=headers)

    async def _upload(request: Request, s: ServerState, parts: tuple[bytes, ...]) -> Response:
        upload = await asyncio.to_thread(Tree(s.folder).upload, parts)
        try:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= CHUNK:
                    await asyncio.to_thread(upload.write, bytes(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(upload.write, bytes(pending))
        except BaseException:
            await asyncio.to_thread(upload.abort)
            raise
        item = await asyncio.to_thread(upload.finish)
        emit("dashboard.upload", s.name, parts, item.size)
        return Response(f'{{"size": {item.size}}}', 201, media_type="application/json")

    @_answers
    async def folders(request: Request) -> Response:
        s, body = server(request), await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise Refused(400, 'the body needs "path": the new folder (percent-encoded)')
        parts = split_path(unquote_to_bytes(body["path"]))
        await asyncio.to_thread(Tree(s.folder).mkdir, parts)
        emit("dashboard.mkdir", s.name, parts)
        return Response("{}", 201, media_type="application/json")

    @_answers
    async def conflicts(request: Request) -> Response:
        return _json(await asyncio.to_thread(listing.conflicts, server(request)))

    @_answers
    async def connect(request: Request) -> Response:
        return _json(connect_doc(server(request), runtime.pv_renderer))

    @_answers
    async def resume(request: Request) -> Response:
        name = server(request).name
        await json_body(request)
        runtime.resume(name)
        return Response('{"resumed": true}', 202, media_type="application/json")

    @_answers
    async def counts(request: Request) -> Response:
        servers = runtime.describe().servers
        found = await asyncio.to_thread(lambda: {s.name: counts_cache.get(s) for s in servers})
        return _json(FileCounts(servers=found))

    @_answers
    async def history(request: Request) -> Response:
        return _json(runtime.history.doc(request.query_params.get("server") or None))

    no_schema = {"include_in_schema": False}
    return [
        Route("/", index, **no_schema),  # type: ignore[arg-type]
        Mount("/static", app=page.assets(), name="static"),
        Route("/api/servers/{name}/files", files, methods=["GET", "DELETE"]),
        Route("/api/servers/{name}/files/content", content, methods=["GET", "PUT"]),
        Route("/api/servers/{name}/folders", folders, methods=["POST"]),
        Route("/api/servers/{name}/conflicts", conflicts),
        Route("/api/servers/{name}/connect", connect),
        Route("/api/servers/{name}/resume", resume, methods=["POST"]),
        Route("/api/counts", counts),
        Route("/api/history", history),
    ]


async def _read(fd: int) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(os.read, fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)
