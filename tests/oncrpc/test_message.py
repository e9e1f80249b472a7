"""ONC RPC call and reply messages (RFC 5531), both directions, without sockets."""

from __future__ import annotations

import struct

import pytest

from filesim.oncrpc.const import AcceptStat, AuthFlavor, AuthStat
from filesim.oncrpc.message import (
    CallDenied,
    CallNotAccepted,
    CallRejected,
    Credentials,
    MalformedReply,
    NotACall,
    accepted_header,
    auth_error_reply,
    encode_call,
    parse_call,
    parse_reply,
    prog_mismatch_reply,
    reply_xid,
    rpc_mismatch_reply,
)
from filesim.oncrpc.record import RecordError


def test_parse_call_with_auth_sys() -> None:
    cred = Credentials(AuthFlavor.AUTH_SYS, 1000, 100, (4, 5), "host")
    call = parse_call(encode_call(7, 100003, 3, 1, b"\0\0\0\x01", cred))
    assert (call.xid, call.prog, call.vers, call.proc) == (7, 100003, 3, 1)
    assert (call.cred.uid, call.cred.gid, call.cred.gids, call.cred.machine) == (
        1000, 100, (4, 5), "host",
    )  # fmt: skip
    assert call.args.uint32() == 1


def test_rpc_version_mismatch_is_denied() -> None:
    msg = bytearray(encode_call(9, 100003, 3, 0))
    msg[8:12] = struct.pack(">I", 3)
    with pytest.raises(CallRejected) as info:
        parse_call(bytes(msg))
    assert struct.unpack(">IIIIII", info.value.reply) == (9, 1, 1, 0, 2, 2)


def test_unknown_auth_flavor_gets_auth_error() -> None:
    msg = bytearray(encode_call(9, 100003, 3, 0))
    msg[24:28] = struct.pack(">I", 6)  # RPCSEC_GSS
    with pytest.raises(CallRejected) as info:
        parse_call(bytes(msg))
    assert struct.unpack(">IIIII", info.value.reply) == (9, 1, 1, 1, AuthStat.AUTH_BADCRED)


def test_malformed_auth_sys_body_gets_auth_error() -> None:
    cred = Credentials(AuthFlavor.AUTH_SYS, 1, 1, tuple(range(17)), "h")  # 17 > 16 gids
    with pytest.raises(CallRejected):
        parse_call(encode_call(1, 100003, 3, 0, b"", cred))


def test_header_too_short_or_not_a_call() -> None:
    with pytest.raises(RecordError):
        parse_call(b"\0\0\0")
    with pytest.raises(NotACall):
        parse_call(struct.pack(">II", 5, 1) + b"\0" * 16)
    with pytest.raises(RecordError):
        parse_call(struct.pack(">II", 5, 7))


def _call_with_verifier(verifier: bytes, args: bytes = b"", length: int | None = None) -> bytes:
    """A NULL call with AUTH_SYS credentials and an AUTH_NONE verifier of body `verifier`
    (its declared length `length`, default the body's own)."""
    head = encode_call(3, 100003, 3, 0, b"", Credentials(AuthFlavor.AUTH_SYS, 1, 2, (), "m"))
    head = head[:-8]  # encode_call's empty verifier
    size = len(verifier) if length is None else length
    return head + struct.pack(">II", AuthFlavor.AUTH_NONE, size) + verifier + args


def test_a_call_verifier_with_a_body_is_skipped() -> None:
    call = parse_call(_call_with_verifier(b"abcdefg\0", b"\0\0\0\x2a"))
    assert (call.xid, call.cred.uid, call.cred.gid) == (3, 1, 2)
    assert call.args.uint32() == 42


@pytest.mark.parametrize("length", [9, 401])  # past the record's end; past MAX_AUTH_BYTES
def test_a_bad_call_verifier_gets_auth_error(length: int) -> None:
    with pytest.raises(CallRejected) as info:
        parse_call(_call_with_verifier(b"abcdefg\0", length=length))
    assert struct.unpack(">IIIII", info.value.reply) == (3, 1, 1, 1, AuthStat.AUTH_BADCRED)


def test_credentials_cut_short_get_auth_error() -> None:
    msg = encode_call(4, 100003, 3, 0, b"", Credentials(AuthFlavor.AUTH_SYS, 1, 2, (), "m"))
    with pytest.raises(CallRejected) as info:
        parse_call(msg[:36])  # inside the credential body
    assert struct.unpack(">IIIII", info.value.reply) == (4, 1, 1, 1, AuthStat.AUTH_BADCRED)


def test_auth_none_credentials_with_a_body_are_anonymous() -> None:
    msg = bytearray(encode_call(5, 100003, 3, 0, b"\0\0\0\x07"))
    body = struct.pack(">II", 1, 2)
    msg[28:32] = struct.pack(">I", len(body))  # AUTH_NONE credential of 8 bytes
    call = parse_call(bytes(msg[:32]) + body + bytes(msg[32:]))
    assert call.cred == Credentials()
    assert call.args.uint32() == 7


# -- replies, as a client reads them -------------------------------------------------------------


def test_a_success_reply_gives_its_results() -> None:
    reply = accepted_header(5) + struct.pack(">I", 42)
    assert reply_xid(reply) == 5
    assert parse_reply(reply).uint32() == 42


def test_a_verifier_with_a_body_is_skipped() -> None:
    # xid, REPLY, MSG_ACCEPTED, verifier (flavor 1, 5 bytes padded to 8), SUCCESS
    reply = struct.pack(">IIIII", 5, 1, 0, 1, 5) + b"abcde\0\0\0" + struct.pack(">I", 0)
    assert parse_reply(reply).remaining() == 0


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (accepted_header(5, AcceptStat.PROG_UNAVAIL), CallNotAccepted,
         "call not accepted (PROG_UNAVAIL)"),
        (prog_mismatch_reply(5, 1, 1), CallNotAccepted, "call not accepted (PROG_MISMATCH)"),
        (auth_error_reply(5, AuthStat.AUTH_BADCRED), CallDenied,
         "call denied: authentication error AUTH_BADCRED"),
        (rpc_mismatch_reply(5), CallDenied, "call denied: RPC version mismatch"),
        (accepted_header(5)[:20], MalformedReply, "truncated before accept_stat"),
        (accepted_header(5)[:16], MalformedReply, "truncated in the verifier"),
        (b"\0\0\0\5", MalformedReply, "shorter than an RPC header"),
        (encode_call(5, 100003, 3, 0), MalformedReply, "where a reply was expected"),
    ],
)  # fmt: skip
def test_replies_without_results_say_why(reply: bytes, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        parse_reply(reply)
    assert message in str(caught.value)


def test_prog_mismatch_carries_the_versions() -> None:
    with pytest.raises(CallNotAccepted) as caught:
        parse_reply(prog_mismatch_reply(5, 2, 4))
    assert caught.value.versions == (2, 4)
