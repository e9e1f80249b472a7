"""The request guard's decisions, without a server (the integration side: test_api_safety)."""

from __future__ import annotations

import pytest

from filesim.runtime.guard import GuardPolicy, Refused, host_name


def test_host_names() -> None:
    assert host_name("Example.COM:80") == "example.com"
    assert host_name("[::1]:8080") == "::1" and host_name("::1") == "::1"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:9", "localhost", "[::1]:9", "10.1.2.3", "app.localhost"]
)
def test_allowed_hosts(host: str) -> None:
    assert GuardPolicy(port=9).host_allowed(host)


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "localhost.evil.example", ""])
def test_refused_hosts(host: str) -> None:
    assert not GuardPolicy(port=9).host_allowed(host)


def test_origins() -> None:
    policy = GuardPolicy(port=9)
    assert policy.origin_allowed("http://127.0.0.1:9") and policy.origin_allowed(
        "http://localhost:9"
    )
    for origin in ("http://127.0.0.1:10", "https://127.0.0.1:9", "null", "http://evil.example:9",
                   "http://user@evil.example:9", "http://127.0.0.1:99999"):  # fmt: skip
        assert not policy.origin_allowed(origin), origin


def test_token_only_for_browsers_and_only_for_changes() -> None:
    policy = GuardPolicy(port=9)
    policy.check("POST", {"host": "127.0.0.1:9"})  # the CLI
    policy.check("GET", {"host": "127.0.0.1:9", "origin": "http://127.0.0.1:9"})
    with pytest.raises(Refused):
        policy.check("POST", {"host": "127.0.0.1:9", "origin": "http://127.0.0.1:9"})
    with pytest.raises(Refused):
        policy.check("DELETE", {"sec-fetch-mode": "cors", "x-filesim-token": "nope"})
    policy.check("PUT", {"sec-fetch-site": "same-origin", "x-filesim-token": policy.token})
