"""Talking to a running topology from a test: its HTTP API, libnfs's command-line tools."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers["content-type"]
    text = raw.decode()
    return status, json.loads(text) if "json" in (kind or "") else text


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def nfs_put(url: str, data: bytes, tmp: Path) -> None:
    src = tmp / "upload.bin"
    src.write_bytes(data)
    run("nfs-cp", str(src), url)
