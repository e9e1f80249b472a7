"""A client of a running topology's HTTP API (`filesim fault ...`, `filesim status --watch`).

It finds the API through the runtime file under the topology's root, and answers with the same
models the API serves (`filesim.runtime.model`, `filesim.runtime.health`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from filesim.errors import FilesimError
from filesim.runtime.health import Readiness
from filesim.runtime.model import ClearedFaults, FaultDoc, FaultList, RuntimeDoc
from filesim.runtime.state import require_runtime
from filesim.topology import Layout

M = TypeVar("M", bound=BaseModel)
TIMEOUT = 10.0


class ApiError(FilesimError):
    """The HTTP API of the running topology refused a request or cannot be reached."""


class ApiClient:
    """Requests to the API at `base` (e.g. http://127.0.0.1:20480)."""

    def __init__(self, base: str, timeout: float = TIMEOUT) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout

    @classmethod
    def of(cls, layout: Layout) -> ApiClient:
        """The API of the topology running under `layout`."""
        runtime = require_runtime(layout)
        if runtime.http is None:
            raise ApiError(
                f"the topology under {layout.root} runs without its HTTP API "
                "(start it with `filesim up`, which serves it)"
            )
        return cls(runtime.http.url)

    # -- the endpoints ----------------------------------------------------------------------

    def servers(self) -> RuntimeDoc:
        return self._call(RuntimeDoc, "GET", "/api/servers")

    def readiness(self) -> Readiness:
        return self._call(Readiness, "GET", "/readyz", ok=(200, 503))

    def metrics(self) -> str:
        return self._fetch("GET", "/metrics").decode()

    def faults(self, server: str | None = None) -> list[FaultDoc]:
        return self._call(FaultList, "GET", "/api/faults" + _query(server=server)).faults

    def add_fault(self, server: str, spec: Mapping[str, object]) -> FaultDoc:
        return self._call(FaultDoc, "POST", "/api/faults", {**spec, "server": server})

    def clear_faults(
        self, server: str | None = None, fault_id: str | None = None
    ) -> list[FaultDoc]:
        path = "/api/faults" + _query(server=server, id=fault_id)
        return self._call(ClearedFaults, "DELETE", path).cleared

    def stop(self, token: str) -> None:
        """Ask the topology to stop (`filesim.runtime.control`: loopback, with its token)."""
        self._fetch("POST", "/api/stop", ok=(202,), headers={"Authorization": f"Bearer {token}"})

    # -- transport --------------------------------------------------------------------------

    def _call(
        self,
        model: type[M],
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> M:
        raw = self._fetch(method, path, body, ok)
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise ApiError(f"unexpected answer from {self.base}{path}: {exc}") from None

    def _fetch(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        ok: tuple[int, ...] = (200, 201),
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code in ok:
                return bytes(raw)
            raise ApiError(_error_message(raw, str(exc.reason))) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the filesim HTTP API at {self.base}: {reason}") from None


def _query(**params: str | None) -> str:
    given = {k: v for k, v in params.items() if v}
    return "?" + urllib.parse.urlencode(given) if given else ""


def _error_message(raw: bytes, fallback: str) -> str:
    """The `error` of an API error answer ({"error": "..."}), else `fallback`."""
    try:
        data = json.loads(raw)
    except ValueError:
        return fallback
    message = data.get("error") if isinstance(data, dict) else None
    return str(message) if message else fallback
