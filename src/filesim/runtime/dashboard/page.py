"""The dashboard page itself: index.html with the CSRF token in it, and the static assets.

Everything the page loads ships in this package (`static/`, uPlot vendored under
`static/vendor/` with its licence): no CDN, no request leaves the machine. The page's
Content-Security-Policy allows nothing but this origin, and no framing (the Resume and Delete
buttons must not be clickjacked).
"""

from __future__ import annotations

import html
from collections.abc import MutableMapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
TOKEN_MARK = "{{csrf_token}}"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def _template() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def page(token: str) -> Response:
    body = _template().replace(TOKEN_MARK, html.escape(token, quote=True))
    return HTMLResponse(body, headers=PAGE_HEADERS)


class Assets(StaticFiles):
    """The static files, with the same protective headers as the page."""

    async def get_response(self, path: str, scope: MutableMapping[str, Any]) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"
        return response


def assets() -> Assets:
    return Assets(directory=STATIC)
