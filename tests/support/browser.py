"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by selenium, which
records the URL of every request the page makes (from Chromium's network log)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from filesim.waiting import poll_until

T = TypeVar("T")

CHROMIUM = os.environ.get("FILESIM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FILESIM_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)  # fmt: skip


def require_chromium() -> None:
    """Skip (a failure under CI=true) where Chromium or its driver is not installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        )
    pytest.importorskip(
        "selenium", reason="selenium is in the test extra: pip install -e '.[test]'"
    )


class Browser:
    """One Chromium with a fresh profile; `requests` lists every URL it was asked to load."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="filesim-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(30)
        self.requests: list[str] = []
        self.console: list[dict[str, Any]] = []

    def collect(self) -> list[str]:
        """Read Chromium's logs: every request URL so far (also kept in `requests`)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        self.console.extend(self.driver.get_log("browser"))
        return self.requests

    def get(self, url: str) -> None:
        self.collect()  # Chromium's log is read in pieces, before each navigation
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """poll_until, tolerating elements replaced while being read (the page re-renders)."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

        def probe() -> T | None:
            try:
                return predicate()
            except (StaleElementReferenceException, WebDriverException):
                return None

        return poll_until(probe, timeout, interval=0.02, what=what or "the page")

    def click(self, css: str) -> None:
        self.wait(lambda: self.find(css).click() or True, what=f"a click on {css}")

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        time.sleep(0.3)  # let the last frame paint (screenshots only, never an assertion)
        self.driver.save_screenshot(str(path))

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
