"""The dashboard in a real headless Chromium, against `filesim up` with the seven servers.

Every check goes through the page as a tester would (clicks, the file picker, the forms) and
is confirmed with a real NFS client (libnfs's nfs-cat/nfs-cp). Screenshots of the main views
land in $FILESIM_SCREENSHOTS (`FILESIM_SCREENSHOTS=docs` refreshes the README's), else in a
temporary directory. The last test checks that no request of the whole session left for
another host.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.runtime.libnfs import Libnfs
from tests.support.api import run
from tests.support.browser import Browser, require_chromium
from tests.support.topology import by_name, detached, nfs_url

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("FILESIM_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_chromium()
    root = tmp_path_factory.mktemp("dash")
    (root / "nas-input-1" / "orders").mkdir(parents=True)
    for i in range(12):
        (root / "nas-input-1" / "orders" / f"order-{i:03}.csv").write_text(f"id,qty\n{i},1\n")
    (root / "nas-input-1" / "<img src=x onerror=alert(1)>.txt").write_text("not html")
    with detached(root, "--http-port", "0") as doc:
        doc["root"] = root
        yield doc


@pytest.fixture(scope="module")
def browser(up: dict[str, Any]) -> Iterator[Browser]:
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.quit()


def api(up: dict[str, Any], path: str) -> Any:
    with urllib.request.urlopen(up["http"]["url"] + path, timeout=10) as response:
        return json.load(response)


def sync_status(up: dict[str, Any], name: str) -> dict[str, Any]:
    return by_name(api(up, "/api/servers"))[name]["sync_status"]  # type: ignore[no-any-return]


def open_view(browser: Browser, up: dict[str, Any], view: str) -> None:
    browser.get(f"{up['http']['url']}/#{view}")
    browser.wait(lambda: not browser.find(f"#view-{view}").get_attribute("hidden"), what=view)


def choose(browser: Browser, css: str, value: str) -> None:
    """Pick `value` in the select `css`, once the page has filled in its options."""
    from selenium.webdriver.support.ui import Select

    browser.wait(lambda: Select(browser.find(css)).select_by_value(value) or True, what=css)
    browser.wait(lambda: browser.find(css).get_attribute("value") == value, what=css)


def files_of(browser: Browser, up: dict[str, Any], server: str) -> None:
    open_view(browser, up, "files")
    choose(browser, "#files-server", server)


def row(browser: Browser, ref: str) -> Any:
    found = browser.all(f'#files-rows tr[data-ref="{ref}"]')
    return found[0] if found else None


def test_the_page_loads_and_shows_seven_servers(
    browser: Browser, up: dict[str, Any], shots: Path
) -> None:
    started = time.monotonic()
    browser.get(up["http"]["url"] + "/")
    script = "return [...document.querySelectorAll('article.card')].map(c => c.dataset.server)"
    names = browser.wait(lambda: len(browser.js(script)) == 7 and browser.js(script))
    shown = time.monotonic() - started
    assert sorted(names) == sorted(s["name"] for s in up["servers"])
    browser.wait(
        lambda: all(browser.find(f'[data-testid="health-{n}"]').text == "NFS ok" for n in names)
    )
    browser.wait(lambda: "13 in folder" in browser.find('[data-testid="server-nas-input-1"]').text,
                 what="the file counts")  # fmt: skip
    # The injected name is text, not markup.
    assert browser.js("return document.querySelectorAll('img').length") == 0
    assert shown < 10, f"seven server cards took {shown:.1f} s"
    browser.screenshot(shots / "dashboard-servers.png")


def test_copy_snippets_come_from_the_mount_and_k8s_renderers(up: dict[str, Any]) -> None:
    doc = api(up, "/api/servers/nas-input-2/connect")
    port = by_name(up)["nas-input-2"]["port"]
    assert f"port={port},mountport={port}" in doc["linux"] and "nolocks" in doc["macos"]
    assert f"vers=4.1,proto=tcp,port={port} " in doc["linux_v4"]
    assert (
        "kind: PersistentVolume\n" in doc["pv_pvc"]
        and "kind: PersistentVolumeClaim" in doc["pv_pvc"]
    )
    assert f"port={port}" in doc["pv_pvc"] and doc["windows_note"]


def test_a_file_uploaded_through_the_page_is_readable_over_nfs(
    browser: Browser, up: dict[str, Any], tmp_path: Path, shots: Path
) -> None:
    files_of(browser, up, "nas-input-1")
    browser.wait(lambda: row(browser, "orders"), what="the orders folder")
    payload = os.urandom(300_000) + b"uploaded through the dashboard"
    source = tmp_path / "from the page.bin"
    source.write_bytes(payload)
    browser.find("#files-upload").send_keys(str(source))
    browser.wait(lambda: row(browser, "from%20the%20page.bin"), what="the uploaded file's row")
    server = by_name(up)["nas-input-1"]

    def over_nfs() -> bool:
        return run("nfs-cat", nfs_url(server, "/from the page.bin"), check=False).stdout == payload

    browser.wait(over_nfs, timeout=15, what="the upload over NFS")
    assert not list((up["root"] / "nas-input-1").glob(".filesim-tmp-*"))
    browser.wait(
        lambda: row(browser, "from%20the%20page.bin").get_attribute("data-state") == "synced"
    )
    browser.screenshot(shots / "dashboard-files.png")


def test_a_file_written_over_nfs_shows_in_the_list_and_the_feed_within_a_second(
    browser: Browser, up: dict[str, Any], tmp_path: Path
) -> None:
    driver = browser.driver
    files_of(browser, up, "nas-output-1")
    files_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    open_view(browser, up, "events")
    events_tab = driver.current_window_handle
    # Both tabs follow the event stream before the write.
    browser.wait(lambda: "live on" in browser.find("#live").get_attribute("class"))
    driver.switch_to.window(files_tab)
    browser.wait(lambda: "live on" in browser.find("#live").get_attribute("class"))
    source = tmp_path / "x.bin"
    source.write_bytes(b"written by the system under test")
    run("nfs-cp", str(source), nfs_url(by_name(up)["nas-output-1"], "/from-nfs.txt"))
    written = time.monotonic()
    browser.wait(lambda: row(browser, "from-nfs.txt"), timeout=1.0, what="the file in the list")
    driver.switch_to.window(events_tab)
    browser.wait(
        lambda: any("from-nfs.txt" in r.text and "nfs." in r.text for r in browser.all("#events-rows tr")),
        timeout=max(0.05, 1.0 - (time.monotonic() - written)), what="the NFS event in the feed",
    )  # fmt: skip
    driver.close()
    driver.switch_to.window(files_tab)


def test_a_fault_added_through_the_page_fails_the_next_nfs_call_until_cleared(
    browser: Browser, up: dict[str, Any], tmp_path: Path, shots: Path
) -> None:
    server = by_name(up)["nas-input-2"]
    (up["root"] / "nas-input-2" / "probe.txt").write_text("probe")
    url = nfs_url(server, "/probe.txt")
    browser.wait(lambda: run("nfs-cat", url, check=False).stdout == b"probe", what="the probe")
    open_view(browser, up, "faults")
    form = "#fault-form"
    browser.wait(lambda: browser.find(f"{form} select[name=kind] option"))
    choose(browser, f"{form} select[name=server]", "nas-input-2")
    choose(browser, f"{form} select[name=kind]", "error")
    browser.wait(lambda: browser.find(f"{form} input[name=error]")).send_keys("EIO")
    browser.find(f"{form} input[name=procedures]").send_keys("READ")
    browser.click(f"{form} button[type=submit]")
    fault = browser.wait(lambda: browser.all("#faults-rows tr[data-id]"), what="the fault row")[0]
    assert "error EIO on READ" in fault.text
    assert run("nfs-cat", url, check=False).returncode != 0
    browser.screenshot(shots / "dashboard-faults.png")
    browser.click(f'[data-testid="clear-{fault.get_attribute("data-id")}"]')
    browser.wait(lambda: not browser.all("#faults-rows tr[data-id]"), what="the fault cleared")
    assert run("nfs-cat", url).stdout == b"probe"


def test_an_invalid_fault_is_refused_by_the_model_and_shown(
    browser: Browser, up: dict[str, Any]
) -> None:
    open_view(browser, up, "faults")
    browser.wait(lambda: browser.find("#fault-form select[name=kind] option"))
    choose(browser, "#fault-form select[name=kind]", "latency")
    browser.wait(lambda: browser.find("#fault-form input[name=delay_ms]")).send_keys("1e400")
    browser.click("#fault-form button[type=submit]")
    message = browser.wait(lambda: browser.find("#fault-error").text)
    assert "delay_ms" in message
    assert api(up, "/api/faults")["faults"] == []


def test_a_halted_agent_is_resumed_from_the_page(
    browser: Browser, up: dict[str, Any], shots: Path
) -> None:
    name = "nas-output-3"
    folder, store = up["root"] / name, Path(by_name(up)[name]["store"])
    for i in range(4):
        (folder / f"batch-{i}.dat").write_text(str(i))
    browser.wait(lambda: len(list(store.glob("batch-*"))) == 4, timeout=15, what="the batch synced")
    for path in folder.glob("batch-*"):
        path.unlink()  # the folder lost every file: the mass-deletion guard halts
    browser.wait(lambda: sync_status(up, name)["halted"], timeout=20, what="the halt")
    open_view(browser, up, "servers")
    browser.wait(lambda: browser.find(f'[data-testid="resume-{name}"]'), what="Resume")
    assert "lost all 4 files" in browser.find(f'[data-testid="halted-{name}"]').text
    assert len(list(store.glob("batch-*"))) == 4, "deleted despite the halt"
    browser.screenshot(shots / "dashboard-halted.png")
    browser.click(f'[data-testid="resume-{name}"]')
    browser.wait(lambda: sync_status(up, name)["halted"] is None, timeout=20, what="the resume")
    browser.wait(lambda: not list(store.glob("batch-*")), timeout=20, what="the deletions")
    browser.wait(lambda: not browser.all(f'[data-testid="resume-{name}"]'), what="no Resume button")


def test_conflicts_are_listed_with_both_copies(
    browser: Browser, up: dict[str, Any], tmp_path: Path
) -> None:
    name = "nas-output-2"
    server = by_name(up)[name]
    (up["root"] / name / "report.csv").write_text("v1\n")
    store = Path(server["store"])
    browser.wait(lambda: (store / "report.csv").exists(), timeout=15, what="report.csv synced")
    request = urllib.request.Request(
        up["http"]["url"] + "/api/faults", method="POST",
        data=json.dumps({"server": name, "kind": "sync-pause"}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    fault = json.load(urllib.request.urlopen(request, timeout=10))
    (up["root"] / name / "report.csv").write_text("tester's v2\n")
    source = tmp_path / "v2.csv"
    source.write_bytes(b"the system's v2, longer\n")
    with Libnfs(server["port"]) as nfs:  # nfs-cp only creates: replace the file over NFS
        assert nfs.unlink("/report.csv").ok
    run("nfs-cp", str(source), nfs_url(server, "/report.csv"))
    urllib.request.urlopen(urllib.request.Request(
        up["http"]["url"] + f"/api/faults/{fault['id']}", method="DELETE"), timeout=10)  # fmt: skip
    files_of(browser, up, name)
    table = browser.wait(lambda: "report.conflict-" in browser.find("#conflicts").text and browser.find("#conflicts"),
                         timeout=20, what="the conflict")  # fmt: skip
    assert (
        "report.csv" in table.text and len(table.find_elements("css selector", "a[download]")) == 2
    )


def test_events_feed_filters_and_file_history(
    browser: Browser, up: dict[str, Any], shots: Path
) -> None:
    # A file of its own, uploaded as the page does: the test needs no earlier one.
    url = up["http"]["url"] + "/api/servers/nas-input-1/files/content?path=for%20the%20feed.bin"
    put = urllib.request.Request(url, data=b"history", method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    with urllib.request.urlopen(put, timeout=10) as response:
        assert response.status == 201
    open_view(browser, up, "events")
    browser.wait(lambda: len(browser.all("#events-rows tr")) > 5, what="a backlog")
    choose(browser, "#events-server", "nas-input-1")
    browser.wait(
        lambda: (
            {r.get_attribute("data-server") for r in browser.all("#events-rows tr")}
            == {"nas-input-1"}
        )
    )
    page_link = "#events-rows td.name a"
    link = browser.wait(
        lambda: next((a for a in browser.all(page_link) if a.text == "for the feed.bin"), None)
    )
    link.click()
    history = browser.wait(
        lambda: "dashboard.upload" in browser.find("#history").text and browser.find("#history")
    )
    assert "sync.copy" in history.text
    browser.screenshot(shots / "dashboard-events.png")


def test_charts_show_every_server(browser: Browser, up: dict[str, Any], shots: Path) -> None:
    open_view(browser, up, "charts")
    browser.wait(lambda: len(browser.all("#chart-grid .uplot")) == 7, what="seven charts")
    browser.wait(lambda: len(api(up, "/api/history")["servers"]["nas-input-1"]["time"]) >= 2,
                 timeout=15, what="two samples")  # fmt: skip
    browser.screenshot(shots / "dashboard-charts.png")


def test_no_request_left_for_another_host(browser: Browser, up: dict[str, Any]) -> None:
    own = urlsplit(up["http"]["url"]).netloc
    urls = browser.collect()
    assert any(u.endswith("/static/app.js") for u in urls), "the network log recorded nothing"
    # Network requests only: data: URLs and Chromium's own pages (chrome://new-tab-page of the
    # second tab) never leave the machine.
    network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    foreign = [u for u in network if urlsplit(u).netloc != own]
    assert foreign == []
    # Refused requests (the invalid fault's 422) are logged by Chromium; script errors must not be.
    errors = [c for c in browser.console if c.get("level") == "SEVERE"
              and "Failed to load resource" not in c.get("message", "")]  # fmt: skip
    assert errors == []
