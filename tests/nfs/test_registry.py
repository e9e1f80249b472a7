"""The NFSv3 procedure registry: every procedure once, with what dispatch needs of it."""

from __future__ import annotations

from pathlib import Path

from filesim.nfs.procedures import NFS3
from filesim.nfs.registry import POST_OP, WCC
from filesim.oncrpc.message import encode_call
from filesim.oncrpc.programs import MOUNT_PROGRAM, NFS_PROGRAM, NfsProc
from tests.support.rig import make_rig

P = NfsProc


def test_every_procedure_is_registered_once() -> None:
    assert [p.proc for p in NFS3] == list(NfsProc) and not NFS3.missing()


def test_what_each_procedure_declares() -> None:
    table = NFS3.table()
    assert {p for p, d in table.items() if d.mutating} == {
        P.SETATTR, P.WRITE, P.CREATE, P.MKDIR, P.SYMLINK, P.MKNOD, P.REMOVE, P.RMDIR,
        P.RENAME, P.LINK,
    }  # fmt: skip
    failure = {p: d.failure for p, d in table.items()}
    assert failure[P.NULL] == failure[P.GETATTR] == b""
    assert failure[P.RENAME] == 2 * WCC and failure[P.LINK] == POST_OP + WCC
    assert {p for p, body in failure.items() if body == WCC} == {
        P.SETATTR, P.WRITE, P.CREATE, P.MKDIR, P.SYMLINK, P.MKNOD, P.REMOVE, P.RMDIR, P.COMMIT,
    }  # fmt: skip


def test_blocking_calls_depend_on_the_export(tmp_path: Path) -> None:
    def blocking(**options: object) -> set[int]:
        rig = make_rig(tmp_path / str(options), **options)
        return {
            proc for proc in NfsProc
            if rig.dispatcher.needs_thread(encode_call(1, NFS_PROGRAM, 3, proc))
        }  # fmt: skip

    assert blocking() == {P.COMMIT}
    assert blocking(sync=True) == {P.COMMIT, P.WRITE}
    rig = make_rig(tmp_path / "m")
    assert not rig.dispatcher.needs_thread(encode_call(1, MOUNT_PROGRAM, 3, int(P.COMMIT)))
