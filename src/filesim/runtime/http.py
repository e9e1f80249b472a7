"""The HTTP API of a running topology: health, readiness, metrics, events and faults.

A Starlette app served by uvicorn as a task on the topology's own event loop (the NFS servers,
sync agents and this API share one loop and one process), so handlers read the runtime's state
directly, through the narrow `RuntimeView` (the runner is one; this module does not know it).
uvicorn's signal handling is off: the runtime owns SIGINT/SIGTERM.

    GET    /healthz            the process is alive
    GET    /readyz             every server answers RPC NULL and finished its initial sync (503)
    GET    /metrics            Prometheus text format
    GET    /api/servers        the `filesim status --json` document
    GET    /api/events         recent events; ?follow=1 streams (SSE or JSON lines)
    GET    /api/faults         active faults; POST adds one; DELETE clears
    DELETE /api/faults/{id}    clears one fault
    POST   /api/stop           stops the topology (loopback, with the control token: control.py)
    GET    /openapi.json       this API, described
    GET    /api                this list
    GET    /                   the dashboard (its endpoints: `filesim.runtime.dashboard.routes`)

Every request passes `filesim.runtime.guard.RequestGuard` first (Host, Origin, CSRF token for
browsers); JSON bodies must be sent as application/json.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
from collections.abc import Iterator
from typing import Protocol

import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from filesim.errors import FilesimError
from filesim.events import Event
from filesim.runtime.control import stop_route
from filesim.runtime.dashboard.routes import DashboardRuntime, dashboard_routes
from filesim.runtime.faults import ActiveFault, FaultController, FaultError, InvalidFault
from filesim.runtime.guard import GuardPolicy, Refused, RequestGuard, json_body
from filesim.runtime.health import Readiness
from filesim.runtime.model import ClearedFaults, FaultDoc, FaultList, HttpInfo
from filesim.runtime.stream import follow, matches, recent
from filesim.topology.faults import FaultSpec
from filesim.waiting import apoll_until

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 20480
START_TIMEOUT = 30.0
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

_schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "filesim", "version": "1"}})


class HttpStartError(FilesimError):
    """The HTTP API cannot listen where it was asked to."""


class RuntimeView(DashboardRuntime, Protocol):
    """What the API needs of a running topology (`TopologyRunner` is one)."""

    @property
    def faults(self) -> FaultController: ...

    async def readiness(self) -> Readiness: ...

    async def metrics_text(self) -> bytes: ...

    @property
    def stop_token(self) -> str | None: ...

    def request_stop(self) -> None: ...


def _json(data: dict[str, object], status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _doc(doc: BaseModel, status: int = 200) -> Response:
    return Response(doc.model_dump_json(), status_code=status, media_type="application/json")


def build_app(
    runtime: RuntimeView,
    policy: GuardPolicy,
    streams: set[asyncio.Queue[Event | None]] | None = None,
) -> Starlette:
    """The ASGI app answering for `runtime` (a started topology) under `policy`; `streams`
    collects the queues of open event streams, so that stopping can end them (None ends a
    stream)."""
    streams = set() if streams is None else streams

    async def healthz(request: Request) -> Response:
        """
        summary: "Liveness: the filesim process answers."
        responses:
          200: {description: alive}
        """
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """
        summary: Readiness of every enabled server.
        description: Ready when every server answers an RPC NULL to NFS and MOUNT and its sync
          agent finished the initial sync.
        responses:
          200: {description: ready}
          503: {description: not ready; `reasons` says why}
        """
        report = await runtime.readiness()
        return _doc(report, 200 if report.ready else 503)

    async def metrics(request: Request) -> Response:
        """
        summary: Prometheus metrics (text exposition format).
        responses:
          200: {description: metrics}
        """
        return Response(await runtime.metrics_text(), media_type=PROMETHEUS_TEXT)

    async def servers(request: Request) -> Response:
        """
        summary: The servers, their endpoints, sync state and faults (`filesim status --json`).
        responses:
          200: {description: the runtime document}
        """
        return _doc(runtime.describe())

    async def events(request: Request) -> Response:
        """
        summary: Recent events; with follow=1, a live stream.
        parameters:
          - {name: server, in: query, schema: {type: string}}
          - {name: path, in: query, schema: {type: string},
             description: "only events of this path (a rename's destination too)"}
          - {name: limit, in: query, schema: {type: integer, default: 100}}
          - {name: follow, in: query, schema: {type: boolean}}
          - {name: format, in: query, schema: {type: string, enum: [sse, jsonl]},
             description: "stream format (default: sse when Accept is text/event-stream)"}
        responses:
          200: {description: "{events: [...]} or a stream of events"}
        """
        q = request.query_params
        server = q.get("server") or None
        wanted = matches(server, q.get("path") or None)
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            return _json({"error": "limit must be an integer"}, 400)
        if q.get("follow", "0").lower() not in ("1", "true", "yes"):
            found = recent(runtime.events, wanted, server, limit)
            return _json({"events": [json.loads(e.to_json()) for e in found]})
        fmt = q.get("format") or (
            "sse" if "text/event-stream" in request.headers.get("accept", "") else "jsonl"
        )
        if fmt not in ("sse", "jsonl"):
            return _json({"error": "format must be sse or jsonl"}, 400)
        media = "text/event-stream" if fmt == "sse" else "application/x-ndjson"
        return StreamingResponse(
            follow(runtime.events, streams, server, limit, fmt, wanted), media_type=media,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    async def faults(request: Request) -> Response:
        """
        summary: Active faults (GET), add one (POST), clear (DELETE).
        parameters:
          - {name: server, in: query, schema: {type: string}}
        requestBody:
          description: "POST: a FaultSpec plus `server`, the server's name"
          content:
            application/json:
              schema:
                allOf:
                  - {$ref: "#/components/schemas/FaultSpec"}
                  - {type: object, required: [server], properties: {server: {type: string}}}
        responses:
          200: {description: "the faults (GET), the new fault (POST), the cleared ones"}
          400: {description: "not a JSON object, or no `server`"}
          404: {description: unknown server or fault}
          409: {description: "a sync fault on a server without a sync agent"}
          415: {description: "the body is not sent as application/json"}
          422: {description: "an invalid fault (unknown names, numbers out of range)"}
        """
        ctl = runtime.faults
        server = request.query_params.get("server") or None
        try:
            if server is not None:
                ctl.require(server)
            if request.method == "GET":
                return _doc(FaultList(faults=_faults(ctl.active(server))))
            if request.method == "DELETE":
                gone = await ctl.clear(server, request.query_params.get("id") or None)
                return _doc(ClearedFaults(cleared=_faults(gone)))
            body = await json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("server"), str):
                return _json({"error": "the body needs `server`: the server's name"}, 400)
            name = body.pop("server")
            fault = await ctl.add(name, body)
            return _doc(fault.to_doc(), 201)
        except Refused as exc:
            return _json({"error": exc.message}, exc.status)
        except InvalidFault as exc:
            return _json({"error": str(exc)}, 422)
        except FaultError as exc:
            status = 404 if str(exc).startswith("no ") else 409
            return _json({"error": str(exc)}, status)

    async def fault_by_id(request: Request) -> Response:
        """
        summary: Clear one fault.
        responses:
          200: {description: the cleared fault}
          404: {description: no such fault}
        """
        try:
            gone = await runtime.faults.clear(fault_id=request.path_params["fault_id"])
        except FaultError as exc:
            return _json({"error": str(exc)}, 404)
        return _doc(ClearedFaults(cleared=_faults(gone)))

    async def openapi(request: Request) -> Response:
        schema = _schemas.get_schema(routes=app.routes)
        spec = FaultSpec.model_json_schema(ref_template="#/components/schemas/{model}")
        defs = spec.pop("$defs", {})
        schema["components"] = {"schemas": {**defs, "FaultSpec": spec}}
        return _json(schema)

    async def index(request: Request) -> Response:
        lines = [route.path for route in app.routes if isinstance(route, Route)]
        return PlainTextResponse("filesim HTTP API\n" + "\n".join(lines) + "\n")

    app = Starlette(
        middleware=[Middleware(RequestGuard, policy=policy)],
        routes=[
            *dashboard_routes(runtime, policy),
            Route("/api", index, include_in_schema=False),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/api/servers", servers),
            Route("/api/events", events),
            Route("/api/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/api/faults/{fault_id}", fault_by_id, methods=["DELETE"]),
            stop_route(lambda: runtime.stop_token, runtime.request_stop),
            Route("/openapi.json", openapi, include_in_schema=False),
        ],
    )
    return app


def _faults(faults: list[ActiveFault]) -> list[FaultDoc]:
    return [f.to_doc() for f in faults]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runtime handles SIGINT/SIGTERM for the whole process


class HttpApi:
    """The API's uvicorn server as a task on the running loop."""

    def __init__(self, runtime: RuntimeView, host: str, port: int, strict: bool = True) -> None:
        """`strict`: fail when `port` is taken; otherwise fall back to a free port."""
        self.runtime = runtime
        self.host = host
        self.port = port
        self.strict = strict
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Queue[Event | None]] = set()
        self.policy: GuardPolicy | None = None

    @property
    def url(self) -> str:
        return HttpInfo.of(self.host, self.port).url

    async def start(self) -> None:
        sock = self._bind()
        self.port = sock.getsockname()[1]
        self.policy = GuardPolicy(port=self.port, bound_host=self.host)
        app = build_app(self.runtime, self.policy, self._streams)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, ws="none",
        )  # fmt: skip
        server = self._server = _Server(config)
        task = self._task = asyncio.create_task(server.serve(sockets=[sock]))

        def started() -> bool:
            if task.done():
                task.result()
                raise HttpStartError(f"the HTTP API did not start on {self.host}:{self.port}")
            return bool(server.started)

        await apoll_until(started, START_TIMEOUT, interval=0.01, what="the HTTP API to start")

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            return socket.create_server((self.host, self.port), family=family)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and not self.strict:
                log.warning("HTTP port %s is in use; the API listens on a free port", self.port)
                return socket.create_server((self.host, 0), family=family)
            if exc.errno == errno.EADDRINUSE:
                raise HttpStartError(
                    f"HTTP port {self.port} on {self.host} is already in use; choose another "
                    "with --http-port (0: any free port)"
                ) from None
            raise HttpStartError(
                f"cannot listen on {self.host}:{self.port} for the HTTP API: {exc.strerror or exc}"
            ) from None

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        for queue in list(self._streams):  # end event streams, or shutdown waits on them
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except (TimeoutError, Exception):
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._server = None
