"""The dashboard on a big topology: seven servers with 10,000 files each, in headless Chromium.

Measures, after `filesim up --detach` has finished its initial sync:
- the API alone: /api/servers, /api/counts (cold: a walk of 140,000 entries; warm: cached),
  one 200-row page of a 10,000-entry directory, the same page filtered;
- the page: from navigation to the seven server cards, to their file counts, to the first page
  of a 10,000-file directory in the Files view, and to the next page after a click.
Prints the figures and one `FILESIM_DASHBOARD_BENCH {...}` JSON line. Needs chromium,
chromium-driver and selenium (the test extra).

    python3 bench/dashboard_load.py            # --files 10000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.browser import Browser
from tests.support.topology import detached

from filesim.topology import default_topology
from filesim.waiting import poll_until


def seed(root: Path, files: int) -> None:
    for server in default_topology().servers:
        folder = root / server.name
        folder.mkdir(parents=True)
        for i in range(files):
            (folder / f"file-{i:06}.csv").write_bytes(b"id,qty\n%d,1\n" % i)


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=30) as response:
            return bool(json.load(response)["ready"])
    except (urllib.error.URLError, TimeoutError):
        return False  # 503 (not ready yet), or too busy syncing to answer in time


# Timed inside the page: resolves with performance.now() (ms since the navigation started) once
# `test` holds, checked every animation frame.
WHEN = """
const [test, done] = [new Function(arguments[0]), arguments[arguments.length - 1]];
const check = () => test() ? done(performance.now()) : requestAnimationFrame(check);
check();
"""


def page_load(browser: Browser, url: str) -> dict[str, float]:
    browser.driver.set_script_timeout(60)
    browser.get("about:blank")  # a new document each time: performance.now() starts again
    browser.get(url + "/#servers")
    cards = browser.driver.execute_async_script(
        WHEN, "return document.querySelectorAll('article.card').length === 7"
    )
    counts = browser.driver.execute_async_script(
        WHEN,
        (
            "return [...document.querySelectorAll('article.card')]"
            ".every(c => /\\d+ in folder/.test(c.textContent))"
        ),
    )
    browser.get("about:blank")
    browser.get(url + "/#files")
    files = browser.driver.execute_async_script(
        WHEN, "return document.querySelectorAll('#files-rows tr').length === 200"
    )
    turned = browser.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const first = document.querySelector('#files-rows tr').dataset.ref;
        const started = performance.now();
        document.querySelector('#files-next').click();
        const check = () => document.querySelector('#files-rows tr').dataset.ref !== first
            ? done(performance.now() - started) : requestAnimationFrame(check);
        check();
    """)
    return {"cards_ms": cards, "counts_ms": counts, "files_ms": files, "next_page_ms": turned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="files per server")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="filesim-dash-bench-") as tmp:
        root = Path(tmp)
        seed(root, args.files)
        started = time.perf_counter()
        with detached(root, "--http-port", "0") as doc:
            url = doc["http"]["url"]
            poll_until(lambda: ready(url), 900, interval=0.5, what="the initial sync")
            ready_s = time.perf_counter() - started
            api = {
                "servers_ms": timed_get(url + "/api/servers"),
                "counts_cold_ms": timed_get(url + "/api/counts"),
                "counts_warm_ms": timed_get(url + "/api/counts"),
                "files_page_ms": timed_get(url + "/api/servers/nas-input-1/files?limit=200"),
                "files_filtered_ms": timed_get(url + "/api/servers/nas-input-1/files?q=file-00999"),
            }
            browser = Browser()
            try:
                runs = [page_load(browser, url) for _ in range(args.runs)]
            except Exception:
                browser.screenshot(Path(tmp).parent / "dashboard-bench-failure.png")
                print(browser.collect()[-20:], browser.console[-20:], file=sys.stderr)
                raise
            finally:
                browser.quit()
    for number, run in enumerate(runs, 1):
        print(f"run {number}: " + ", ".join(f"{k} {v:.0f}" for k, v in run.items()))
    page = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    result = {"files_per_server": args.files, "servers": 7, "ready_s": round(ready_s, 1),
              **{k: round(v, 1) for k, v in api.items()}, **page}  # fmt: skip
    for key, value in result.items():
        print(f"{key:>20}: {value}")
    print("FILESIM_DASHBOARD_BENCH " + json.dumps(result))


if __name__ == "__main__":
    main()
