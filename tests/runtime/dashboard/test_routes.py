"""The dashboard's endpoints over HTTP: hostile paths refused, files up and down, resume."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from filesim.testing import NasTopology
from filesim.waiting import poll_until
from tests.support.api import http, run

pytestmark = pytest.mark.integration


def fetch(
    url: str, method: str = "GET", data: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                response.read(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}


@pytest.mark.parametrize("ref", ["..", "../x", "a/..%2F..%2Fetc", "%2E%2E/etc/passwd", "x%00y",
                                 ".filesim-tmp-1"])  # fmt: skip
def test_hostile_refs_are_refused_everywhere(topo: NasTopology, ref: str) -> None:
    base = f"{topo.http_url}/api/servers/nas-input-1"
    assert fetch(f"{base}/files?path={ref}")[0] in (400, 404)
    assert fetch(f"{base}/files/content?path={ref}")[0] in (400, 404)
    assert fetch(f"{base}/files/content?path={ref}", "PUT", b"x")[0] in (400, 404)
    assert fetch(f"{base}/files?path={ref}", "DELETE")[0] in (400, 404)
    assert http(f"{base}/folders", "POST", {"path": ref})[0] in (400, 404)


def test_symlinks_planted_in_the_folder_lead_nowhere(topo: NasTopology, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    folder = topo.folder("nas-input-1")
    (folder / "escape").symlink_to(outside)
    try:
        base = f"{topo.http_url}/api/servers/nas-input-1"
        assert fetch(f"{base}/files/content?path=escape/secret")[0] == 404
        assert fetch(f"{base}/files/content?path=escape/new", "PUT", b"x")[0] in (404, 409)
        assert fetch(f"{base}/files?path=escape")[1].count(b'"rows":[]') == 1
        assert os.listdir(outside) == ["secret"]
    finally:
        (folder / "escape").unlink()


def test_upload_download_delete_and_a_new_folder(topo: NasTopology) -> None:
    base = f"{topo.http_url}/api/servers/nas-input-1"
    payload = os.urandom(3 << 20)
    status, body, _ = fetch(f"{base}/files/content?path=up%25%20%C3%A9.bin", "PUT", payload)
    assert status == 201 and b'"size": 3145728' in body
    name = "up% é.bin"
    assert (topo.folder("nas-input-1") / name).read_bytes() == payload
    status, got, headers = fetch(f"{base}/files/content?path=up%25%20%C3%A9.bin&side=folder")
    assert status == 200 and got == payload
    assert headers["content-disposition"] == "attachment; filename*=UTF-8''up%25%20%C3%A9.bin"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-content-type-options"] == "nosniff"
    assert fetch(f"{base}/files?path=up%25%20%C3%A9.bin", "DELETE")[0] == 200
    assert not (topo.folder("nas-input-1") / name).exists()
    assert http(f"{base}/folders", "POST", {"path": "made%20here"})[0] == 201
    assert (topo.folder("nas-input-1") / "made here").is_dir()


def test_an_upload_syncs_like_a_dropped_file(topo: NasTopology) -> None:
    base = f"{topo.http_url}/api/servers/nas-input-1"
    assert fetch(f"{base}/files/content?path=dropped.txt", "PUT", b"dropped")[0] == 201
    url = topo.server("nas-input-1").url("/dropped.txt")
    poll_until(lambda: run("nfs-cat", url, check=False).stdout == b"dropped", 10, what="sync")
    kinds = [e.kind for e in topo.recent_events(server="nas-input-1") if e.path == "dropped.txt"]
    assert "dashboard.upload" in kinds and "sync.copy" in kinds


def test_resume_of_a_sync_that_is_not_halted_is_a_conflict(topo: NasTopology) -> None:
    status, body = http(f"{topo.http_url}/api/servers/nas-input-1/resume", "POST", {})
    assert status == 409 and "not halted" in body["error"]
    assert http(f"{topo.http_url}/api/servers/nope/resume", "POST", {})[0] == 404
