"""Stopping a running topology through its HTTP API: `filesim down` on every platform.

A signal is a poor stop on Windows (SIGTERM is TerminateProcess there: no clean shutdown, and
there is no console to send Ctrl-C to a detached process), so the topology also stops when
asked on `POST /api/stop`. That request must come from loopback and carry, as a bearer token,
the secret the runtime writes at start into `ROOT/.filesim/control.token`, readable by its
owner only (mode 0600; on Windows the state directory's ACL, normally the user's own, is what
protects it). A web page cannot read the file, so it cannot stop anything.

`stop_via_api` is the client side: True when the topology accepted the request; False when the
API did not answer (no API, no token, refused, a hung process), and the caller falls back to
the OS.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from filesim.runtime.api_client import ApiClient, ApiError
from filesim.runtime.model import RuntimeDoc
from filesim.topology import Layout

log = logging.getLogger(__name__)

STOP_PATH = "/api/stop"
API_TIMEOUT = 5.0
"""Seconds `filesim down` waits for the API to answer before it falls back to the OS."""


def write_token(layout: Layout) -> str:
    """A new stop token, written owner-only to `layout.control_token`."""
    token = secrets.token_urlsafe(32)
    path = layout.control_token
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a file someone else made could carry other permissions
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return token


def read_token(layout: Layout) -> str | None:
    try:
        return layout.control_token.read_text().strip() or None
    except OSError:
        return None


def clear_token(layout: Layout, token: str) -> None:
    """Remove the token file if it still holds `token` (not a newer topology's)."""
    if read_token(layout) == token:
        with contextlib.suppress(OSError):
            layout.control_token.unlink()


def _loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def stop_route(token: Callable[[], str | None], request_stop: Callable[[], None]) -> Route:
    """`POST /api/stop`: stop the topology (202), for a loopback client with the token."""

    async def stop(request: Request) -> Response:
        """
        summary: Stop the topology (what `filesim down` asks first).
        description: "Only from loopback, with the header Authorization: Bearer TOKEN, TOKEN being
          the contents of ROOT/.filesim/control.token."
        responses:
          202: {description: stopping}
          401: {description: no or a wrong token}
          403: {description: not from loopback}
        """
        if not _loopback(request):
            return JSONResponse({"error": "stopping is only allowed from loopback"}, 403)
        expected = token()
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"error": "a valid control token is required"}, 401)
        log.info("stop requested through the HTTP API")
        request_stop()
        return JSONResponse({"status": "stopping"}, 202)

    return Route(STOP_PATH, stop, methods=["POST"])


def stop_via_api(layout: Layout, runtime: RuntimeDoc, timeout: float = API_TIMEOUT) -> bool:
    """Ask the topology of `runtime` to stop through its API; True when it accepted."""
    token = read_token(layout)
    if runtime.http is None or token is None:
        return False
    try:
        ApiClient(runtime.http.url, timeout).stop(token)
    except ApiError as exc:  # refused, or not answering (refused connection, timed out)
        log.warning("the HTTP API did not stop the topology: %s", exc)
        return False
    return True
