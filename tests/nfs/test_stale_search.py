"""A handle whose path the server does not know costs no unbounded work on the event loop
(issue 10, item 9): the search of the export is bounded there and finished in a thread, and
handles issued before a restart still resolve (NFSv3: answered from a thread; NFSv4: DELAY,
then found)."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from filesim.nfs import handles
from filesim.nfs.attrs import Attrs
from filesim.nfs.generations import Generations
from filesim.nfs.handles import LOOP_BUDGET, NotFoundYet
from filesim.nfs.localfs import LocalVfs
from filesim.nfs.v4.const import Op, Status
from filesim.nfs.vfs import NfsError
from filesim.nfsclient.client import NfsClient, NfsClientError
from filesim.waiting import poll_until
from tests.nfs.v4.v4rig import call, compound, dispatcher, name
from tests.support.threaded import serving

ID_TABLE = False  # searches by native number; the id table finds these handles without one


def _wide_tree(root: Path) -> None:
    """More entries than a search may read on the loop, the target found last."""
    for d in range(4):
        (root / f"d{d}").mkdir(parents=True)
        for i in range(LOOP_BUDGET // 3):
            (root / f"d{d}" / f"f{i:05}").touch()
    (root / "d3" / "deep").mkdir()
    (root / "d3" / "deep" / "target").write_bytes(b"found me")


def _unbounded() -> None:
    handles._local.__dict__.pop("budget", None)


def test_v3_handle_after_restart_resolves_from_a_thread(tmp_path: Path) -> None:
    root = tmp_path / "e"
    _wide_tree(root)
    with serving(root) as server, NfsClient("127.0.0.1", server.port) as client:
        fh = client.walk(client.mnt("/data"), "d3/deep/target")
    with serving(root) as server, NfsClient("127.0.0.1", server.port) as client:  # restarted
        assert client.read(fh, 0, 100)[0] == b"found me"
        (root / "d3" / "deep" / "target").unlink()
        with pytest.raises(NfsClientError, match="STALE"):
            client.getattr(fh)
        client.null()  # the server keeps serving


def test_the_search_on_the_loop_is_bounded_and_a_thread_finishes_it(tmp_path: Path) -> None:
    root = tmp_path / "e"
    _wide_tree(root)
    vfs = LocalVfs(root)
    st = (root / "d3" / "deep" / "target").stat()
    node = handles.Node.of(Attrs.of(st), 0)
    index = handles.NodeIndex(vfs, Generations(None))
    handles.bound_searches()
    try:
        with pytest.raises(NotFoundYet):
            index.resolve(node)
        with ThreadPoolExecutor(1) as pool:
            index.background = pool
            assert index.search_later(st.st_ino)
        assert index.resolve(node)[0] == "d3/deep/target"  # now from the index
        (root / "d3" / "deep" / "target").unlink()
        # a thread searches the whole export: gone
        with ThreadPoolExecutor(1) as pool, pytest.raises(NfsError, match="gone"):
            pool.submit(index.resolve, node).result()
        with pytest.raises(NfsError, match="gone"):  # and the loop knows it without a search
            index.resolve(node)
    finally:
        _unbounded()


def test_v4_putfh_of_an_unknown_handle_answers_delay_then_resolves(tmp_path: Path) -> None:
    root = tmp_path / "e"
    _wide_tree(root)
    first = dispatcher(root)
    ops = [(Op.PUTROOTFH, b""), (Op.LOOKUP, name("data"))]
    for part in ("d3", "deep", "target"):
        ops.append((Op.LOOKUP, name(part)))
    _, results, reply = call(first, compound([*ops, (Op.GETFH, b"")]))
    assert results[-1] == (Op.GETFH, Status.OK)
    at = reply.rindex(struct.pack(">II", Op.GETFH, Status.OK)) + 8
    length = struct.unpack_from(">I", reply, at)[0]
    fh = reply[at : at + 4 + length + (-length % 4)]  # the handle as XDR opaque
    restarted = dispatcher(root)
    handles.bound_searches()
    try:
        with ThreadPoolExecutor(1) as pool:
            restarted.export.index.background = pool
            putfh = [(Op.PUTFH, fh), (Op.GETATTR, b"\0\0\0\0")]
            assert call(restarted, compound(putfh))[1][0] == (Op.PUTFH, Status.DELAY)
            poll_until(
                lambda: call(restarted, compound(putfh))[1][0] == (Op.PUTFH, Status.OK),
                10, what="the handle to resolve after the search",
            )  # fmt: skip
    finally:
        _unbounded()
