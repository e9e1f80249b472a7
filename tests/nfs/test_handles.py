"""The handle secret and codec."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from filesim.nfs import handles
from filesim.nfs.handles import HANDLE_LEN, HandleCodec, Node, load_secret
from filesim.nfs.vfs import NfsError
from filesim.oncrpc.programs import NfsStat


def _load(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(load_secret(Path(path)))


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=_load, args=(str(tmp_path / "secret"), queue))
             for _ in range(8)]  # fmt: skip
    for p in procs:
        p.start()
    secrets = {queue.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(secrets) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]
    assert load_secret(tmp_path / "secret") in secrets


def test_codec_roundtrip_and_rejections() -> None:
    codec = HandleCodec(3, b"x" * 32)
    handle = codec.encode(Node(123456789, 8))
    assert len(handle) == HANDLE_LEN <= 64
    assert codec.decode(handle) == Node(123456789, 8)
    with pytest.raises(NfsError) as info:
        HandleCodec(3, b"y" * 32).decode(handle)
    assert info.value.status == NfsStat.BADHANDLE
    with pytest.raises(NfsError) as info:
        HandleCodec(4, b"x" * 32).decode(handle)
    assert info.value.status == NfsStat.STALE


def test_issued_handles_are_the_same_bytes_and_their_cache_is_bounded() -> None:
    """Handles are kept once issued (no HMAC per reply): the kept one is the one a fresh codec
    computes, and the cache starts again past its bound instead of growing."""
    codec, fresh = HandleCodec(3, b"x" * 32), HandleCodec(3, b"x" * 32)
    first = codec.encode(Node(7, 8))
    assert codec.encode(Node(7, 8)) is first
    assert first == fresh.encode(Node(7, 8)) != codec.encode(Node(7, 4))
    for ino in range(100, 100 + handles._ISSUED_MAX + 1):
        codec.encode(Node(ino, 8))
    assert len(codec._handles) <= handles._ISSUED_MAX + 1
    assert codec.encode(Node(7, 8)) == first


def test_a_handle_issued_by_an_earlier_release_still_decodes() -> None:
    """Clients keep handles across a server upgrade: the bytes below were issued by the code
    before the MAC was keyed once per codec (HMAC-SHA256, 12 bytes), for this secret."""
    issued = bytes.fromhex("020000000700000000000004d20000000300000063081f4adf29f29568ab231b6656")
    codec = HandleCodec(7, b"s" * 32)
    assert codec.decode(issued) == Node(1234, 8, 3, 99)
    assert codec.encode(Node(1234, 8, 3, 99)) == issued
