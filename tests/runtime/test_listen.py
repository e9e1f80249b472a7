"""The one-line errors of a server that cannot listen: each names the port and what to do."""

from __future__ import annotations

import errno
from dataclasses import dataclass

import pytest

from filesim.runtime.listen import bind_error
from filesim.topology import Server


@dataclass
class _Bound:
    """What bind_error reads of a server's NFS side."""

    host: str = "127.0.0.1"
    port: int = 20490
    rpcbind_port: int | None = None


def _server(**fields: object) -> Server:
    return Server.model_validate({"name": "nas-a", "role": "input", "fsid": 1, **fields})


@pytest.mark.parametrize(
    ("server", "bound", "port_flag", "hint"),
    [
        (_server(), _Bound(), False, "choose another --base-port"),
        (_server(port=20490), _Bound(), False, "give nas-a another port in the topology"),
        (_server(), _Bound(port=2049, rpcbind_port=111), False, "use custom ports"),
        (_server(), _Bound(), True, "choose another --port"),  # `filesim serve --port`
        (_server(port=20490), _Bound(), True, "choose another --port"),  # it wins over the file
    ],
)
def test_a_port_in_use_says_where_to_change_it(
    server: Server, bound: _Bound, port_flag: bool, hint: str
) -> None:
    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    message = bind_error(server, bound, in_use, port_flag=port_flag)  # type: ignore[arg-type]
    assert message.startswith(f"port {bound.port}") and "in use (wanted by nas-a)" in message
    assert message.endswith(hint)
