"""What keeps a web page from driving the HTTP API: Host, Origin, CSRF token, JSON bodies.

The API listens on loopback, where any page the tester's browser opens can reach it. Three
attacks matter, and each has its check (`RequestGuard`, in front of every route):

- *DNS rebinding*: a page of evil.example makes its name resolve to 127.0.0.1 and then talks to
  the API as its own origin. The browser still sends `Host: evil.example:PORT`: only the bound
  address, IP literals and this machine's own names are accepted.
- *Cross-site requests*: a page elsewhere posts to the API (a form, `fetch` in no-cors mode).
  Browsers say where a request comes from: a foreign `Origin`, or `Sec-Fetch-Site: cross-site`
  or `same-site` on a state-changing request, is refused.
- *Requests without those headers* (old browsers omit `Origin` on some requests): every JSON
  endpoint requires `Content-Type: application/json` (`json_body`), which no form and no
  no-cors request can send, and every state-changing request a browser makes must carry the
  page's CSRF token in `X-Filesim-Token`. Clients that are not browsers (the CLI, curl, tests)
  send neither Origin nor Sec-Fetch-*: they need no token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

TOKEN_HEADER = "x-filesim-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_JSON_BYTES = 1 << 20
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class Refused(Exception):
    """A request the API will not serve: `status` and a message for the `error` field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_name(value: str) -> str:
    """The name of a Host header or an origin's authority, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") > 1:  # a bare IPv6 address
        return value
    return value.partition(":")[0].rstrip(".")


@dataclass
class GuardPolicy:
    """Which Host names and Origins the API accepts, and the CSRF token of its page."""

    port: int
    bound_host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        own = {socket.gethostname().lower()} | {host_name(self.bound_host)}
        self.names = LOCAL_NAMES | frozenset(n for n in own if n)

    def host_allowed(self, host: str) -> bool:
        """An IP literal (a rebinding attack needs a DNS name), a localhost name, this
        machine's name or the address the API is bound to."""
        name = host_name(host)
        return _is_ip(name) or name in self.names or name.endswith(".localhost")

    def origin_allowed(self, origin: str) -> bool:
        """The API's own origin: http, an accepted host name, the API's port."""
        try:
            parts = urlsplit(origin)
            port = parts.port or 80
        except ValueError:
            return False
        return (
            parts.scheme == "http"
            and parts.hostname is not None
            and self.host_allowed(parts.netloc.rpartition("@")[2])
            and port == self.port
        )

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def check(self, method: str, headers: dict[str, str]) -> None:
        """Raise Refused unless a request with `method` and (lower-case) `headers` may pass."""
        host = headers.get("host")
        if host is not None and not self.host_allowed(host):
            raise Refused(
                403,
                f"Host {host!r} is not an address of this filesim API (a DNS rebinding "
                "attempt?); use http://127.0.0.1:PORT or http://localhost:PORT",
            )
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin):
            raise Refused(403, f"requests from the web page at {origin!r} are not accepted")
        if method in SAFE_METHODS:
            return
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            raise Refused(403, f"a {site} request may not change anything here")
        browser = origin is not None or site is not None or "sec-fetch-mode" in headers
        if browser and not self.token_ok(headers.get(TOKEN_HEADER)):
            raise Refused(403, "missing or wrong CSRF token (reload the dashboard page)")


class RequestGuard:
    """ASGI middleware applying a `GuardPolicy` to every HTTP request."""

    def __init__(self, app: Asgi, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope["headers"]}  # fmt: skip
            try:
                self.policy.check(scope["method"], headers)
            except Refused as exc:
                await _refuse(send, exc)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, exc: Refused) -> None:
    body = json.dumps({"error": exc.message}).encode()
    await send({
        "type": "http.response.start", "status": exc.status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def json_body(request: Request) -> object:
    """The request's JSON body; Refused(415) unless it is declared application/json,
    Refused(413) when too large, Refused(400) when it does not parse."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(415, "the body must be JSON, sent as Content-Type: application/json")
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        raise Refused(400, "bad Content-Length") from None
    if declared > MAX_JSON_BYTES:
        raise Refused(413, f"a JSON body may be at most {MAX_JSON_BYTES} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise Refused(413, f"a JSON body may be at most {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(raw)
    except ValueError:
        raise Refused(400, "the body is not valid JSON") from None
