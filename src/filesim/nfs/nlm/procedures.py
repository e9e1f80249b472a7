"""NLM v4 (the NFSv3 lock manager, program 100021) as the server answers it.

Each procedure decodes its arguments, asks the `LockManager` and encodes the answer. The _MSG
forms do the same but answer with a call of their own (TEST_RES, LOCK_RES, ...) to the client,
through `Services.send`, and no reply. GRANTED and the _RES procedures are what a server calls
on a client: a server does not answer them (PROC_UNAVAIL). NLM versions 1 and 3 are NFSv2's
(32-bit ranges, v2 file handles) and are not served.
"""

from __future__ import annotations

from filesim.nfs.nlm.types import CancelArgs, LockArgs, Notify, ShareArgs, TestArgs, UnlockArgs
from filesim.nfs.services import Origin, Program, Services
from filesim.oncrpc.programs import NLM_PROGRAM, NLM_VERSION, NLM_VERSIONS, NlmProc
from filesim.oncrpc.xdr import Unpacker

NLM = Program(NLM_PROGRAM, "nlm", NLM_VERSIONS, NlmProc)


@NLM.procedure(NlmProc.NULL)
def null(s: Services, o: Origin, u: Unpacker) -> bytes:
    return b""


@NLM.procedure(NlmProc.TEST)
def test(s: Services, o: Origin, u: Unpacker) -> bytes:
    return s.nlm.test(TestArgs.decode(u)).encode()


@NLM.procedure(NlmProc.LOCK)
def lock(s: Services, o: Origin, u: Unpacker) -> bytes:
    return s.nlm.lock(LockArgs.decode(u), o.client, o.local).encode()


@NLM.procedure(NlmProc.NM_LOCK)
def nm_lock(s: Services, o: Origin, u: Unpacker) -> bytes:
    """A lock of a client that runs no status monitor: never blocks."""
    args = LockArgs.decode(u)
    args = LockArgs(args.cookie, False, args.exclusive, args.lock, args.reclaim, args.state)
    return s.nlm.lock(args, o.client, o.local).encode()


@NLM.procedure(NlmProc.CANCEL)
def cancel(s: Services, o: Origin, u: Unpacker) -> bytes:
    return s.nlm.cancel(CancelArgs.decode(u)).encode()


@NLM.procedure(NlmProc.UNLOCK)
def unlock(s: Services, o: Origin, u: Unpacker) -> bytes:
    return s.nlm.unlock(UnlockArgs.decode(u)).encode()


@NLM.procedure(NlmProc.SHARE)
def share(s: Services, o: Origin, u: Unpacker) -> bytes:
    return s.nlm.share(ShareArgs.decode(u), o.client, o.local).encode()


@NLM.procedure(NlmProc.UNSHARE)
def unshare(s: Services, o: Origin, u: Unpacker) -> bytes:
    return s.nlm.unshare(ShareArgs.decode(u)).encode()


@NLM.procedure(NlmProc.FREE_ALL)
def free_all(s: Services, o: Origin, u: Unpacker) -> bytes:
    """The client restarted: everything its host held goes."""
    s.nlm.host_rebooted(Notify.decode(u).name)
    return b""


# -- the asynchronous forms: the answer is a call back to the client ----------------------


def _answer(s: Services, o: Origin, proc: NlmProc, result: bytes) -> None:
    if s.send is not None:
        s.send(o, NLM_PROGRAM, NLM_VERSION, proc, result)


@NLM.procedure(NlmProc.TEST_MSG)
def test_msg(s: Services, o: Origin, u: Unpacker) -> None:
    _answer(s, o, NlmProc.TEST_RES, test(s, o, u))


@NLM.procedure(NlmProc.LOCK_MSG)
def lock_msg(s: Services, o: Origin, u: Unpacker) -> None:
    _answer(s, o, NlmProc.LOCK_RES, lock(s, o, u))


@NLM.procedure(NlmProc.CANCEL_MSG)
def cancel_msg(s: Services, o: Origin, u: Unpacker) -> None:
    _answer(s, o, NlmProc.CANCEL_RES, cancel(s, o, u))


@NLM.procedure(NlmProc.UNLOCK_MSG)
def unlock_msg(s: Services, o: Origin, u: Unpacker) -> None:
    _answer(s, o, NlmProc.UNLOCK_RES, unlock(s, o, u))


@NLM.procedure(NlmProc.GRANTED_RES)
def granted_res(s: Services, o: Origin, u: Unpacker) -> None:
    """A client's answer to a GRANTED_MSG; the server sends GRANTED, so this is ignored."""
    return None
