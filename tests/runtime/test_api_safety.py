"""The HTTP API cannot be driven by a web page (issue 10, item 7): foreign Origin, foreign Host
(DNS rebinding), non-JSON bodies and numbers out of range are refused, and a refused fault is
never stored. Raw requests, with exactly the headers a browser would send."""

from __future__ import annotations

import http.client as httplib
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from filesim.testing import NasTopology
from tests.support.api import http

pytestmark = pytest.mark.integration

FAULT = {"server": "nas-input-1", "kind": "readonly"}


def raw(
    topo: NasTopology, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    """One request with exactly these headers (Host included when given)."""
    url = urlsplit(topo.http_url)
    conn = httplib.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key.replace("_", "-"), value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type") or ""
        return response.status, json.loads(data) if "json" in kind and data else data
    finally:
        conn.close()


def active(topo: NasTopology) -> list[dict[str, Any]]:
    return http(topo.http_url + "/api/faults")[1]["faults"]  # type: ignore[no-any-return]


def own_origin(topo: NasTopology) -> str:
    return topo.http_url


def test_a_foreign_origin_cannot_add_a_fault_even_as_text_plain(topo: NasTopology) -> None:
    # What a page on evil.example can send without a CORS preflight.
    status, body = raw(topo, "POST", "/api/faults", json.dumps(FAULT).encode(),
                       Origin="http://evil.example", Content_Type="text/plain")  # fmt: skip
    assert status == 403 and "evil.example" in body["error"]
    status, _ = raw(topo, "POST", "/api/faults", json.dumps(FAULT).encode(),
                    Origin="http://evil.example", Content_Type="application/json")  # fmt: skip
    assert status == 403
    assert active(topo) == []


def test_another_local_port_or_a_null_origin_is_foreign_too(topo: NasTopology) -> None:
    port = urlsplit(topo.http_url).port
    for origin in (f"http://127.0.0.1:{port + 1}", "null", f"https://127.0.0.1:{port}"):
        status, _ = raw(topo, "DELETE", "/api/faults", Origin=origin)
        assert status == 403, origin


def test_dns_rebinding_host_is_refused_for_reads_and_writes(topo: NasTopology) -> None:
    port = urlsplit(topo.http_url).port
    with topo.readonly("nas-input-1"):
        for method, path in (("GET", "/api/servers"), ("GET", "/api/faults"),
                             ("DELETE", "/api/faults"), ("GET", "/")):  # fmt: skip
            status, body = raw(topo, method, path, Host=f"evil.example:{port}")
            assert status == 403, (method, path)
            assert "rebinding" in body["error"]
        assert len(active(topo)) == 1, "a rebinding request cleared the fault"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert raw(topo, "GET", "/healthz", Host=host)[0] == 200, host


def test_json_endpoints_require_application_json(topo: NasTopology) -> None:
    body = json.dumps(FAULT).encode()
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        status, answer = raw(topo, "POST", "/api/faults", body, Content_Type=kind)
        assert status == 415, kind
        assert "application/json" in answer["error"]
    assert raw(topo, "POST", "/api/faults", body)[0] == 415  # no Content-Type at all
    assert active(topo) == []
    status, _ = raw(topo, "POST", "/api/servers/nas-input-1/folders", b'{"path": "x"}',
                    Content_Type="text/plain")  # fmt: skip
    assert status == 415


@pytest.mark.parametrize("field", ["delay_ms", "duration_s", "jitter_ms"])
@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "1e12"])
def test_numbers_must_be_finite_and_bounded(topo: NasTopology, field: str, number: str) -> None:
    kind = "latency"
    extra = "" if field == "delay_ms" else ', "delay_ms": 5'
    body = f'{{"server": "nas-input-1", "kind": "{kind}", "{field}": {number}{extra}}}'.encode()
    status, answer = raw(topo, "POST", "/api/faults", body, Content_Type="application/json")
    assert status == 422, answer
    assert field in answer["error"]
    # Nothing was stored, and everything that lists faults still answers.
    assert active(topo) == []
    for path in ("/api/servers", "/api/faults", "/api/events?limit=5"):
        assert http(topo.http_url + path)[0] == 200, path
    assert "Infinity" not in topo.layout.events_file.read_text()
    assert "NaN" not in topo.layout.events_file.read_text()


def test_a_browser_request_needs_the_page_token(topo: NasTopology) -> None:
    body = json.dumps(FAULT).encode()
    origin = own_origin(topo)
    status, answer = raw(topo, "POST", "/api/faults", body, Origin=origin,
                         Content_Type="application/json")  # fmt: skip
    assert status == 403 and "CSRF" in answer["error"]
    status, _ = raw(topo, "POST", "/api/faults", body, Origin=origin,
                    Content_Type="application/json", X_Filesim_Token="wrong")  # fmt: skip
    assert status == 403
    status, _ = raw(topo, "POST", "/api/faults", body, Content_Type="application/json",
                    Sec_Fetch_Site="cross-site", Sec_Fetch_Mode="no-cors")  # fmt: skip
    assert status == 403
    assert active(topo) == []
    page = raw(topo, "GET", "/")[1].decode()
    token = page.split('name="filesim-token" content="')[1].split('"')[0]
    status, added = raw(topo, "POST", "/api/faults", body, Origin=origin,
                        Content_Type="application/json", X_Filesim_Token=token,
                        Sec_Fetch_Site="same-origin")  # fmt: skip
    assert status == 201 and added["kind"] == "readonly"


def test_the_page_forbids_framing_and_foreign_content(topo: NasTopology) -> None:
    url = urlsplit(topo.http_url)
    conn = httplib.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", "/")
    response = conn.getresponse()
    response.read()
    conn.close()
    csp = response.getheader("Content-Security-Policy") or ""
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert response.getheader("X-Frame-Options") == "DENY"


def test_clients_without_browser_headers_need_no_token(topo: NasTopology) -> None:
    # The CLI (`filesim fault add`) and curl send neither Origin nor Sec-Fetch-*.
    status, added = http(topo.http_url + "/api/faults", "POST", FAULT)
    assert status == 201
    assert http(f"{topo.http_url}/api/faults/{added['id']}", "DELETE")[0] == 200
