"""The page ships whole: every asset it names is in the package, none comes from elsewhere."""

from __future__ import annotations

import re

from filesim.runtime.dashboard.page import STATIC, TOKEN_MARK, page


def test_every_asset_the_page_loads_is_packaged_and_local() -> None:
    html = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs, "no assets found"
    for ref in refs:
        if ref.startswith("data:") or ref.startswith("#"):
            continue
        assert ref.startswith("/static/"), ref
        assert (STATIC / ref.removeprefix("/static/")).is_file(), ref
    for script in STATIC.glob("*.js"):
        for module in re.findall(r'from "\./([^"]+)"', script.read_text()):
            assert (STATIC / module).is_file(), (script.name, module)
        assert not re.search(r"https?://", script.read_text()), script.name
    assert (STATIC / "vendor" / "uplot" / "LICENSE").read_text().startswith("The MIT License")


def test_the_token_is_put_in_the_page_escaped() -> None:
    body = page('a"<b>').body.decode()
    assert TOKEN_MARK not in body
    assert 'content="a&quot;&lt;b&gt;"' in body
