"""The fattr4 encoder compiled per request mask gives the bytes of the per-attribute encoders."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from filesim.nfs.attrs import Attrs, make_rdev
from filesim.nfs.v4 import attrs
from filesim.nfs.v4.attrplan import compile_encoder
from filesim.nfs.vfs import FsStat

_KINDS = [0o100000, 0o040000, 0o120000, 0o020000, 0o060000, 0o010000, 0o140000, 0]
_NS = st.integers(-(2**62), 2**62)  # times before 1970 too


@given(
    request=st.integers(0, 2**96 - 1),
    minor=st.integers(0, 2),
    kind=st.sampled_from(_KINDS),
    perms=st.integers(0, 0o7777),
    numbers=st.lists(st.integers(0, 2**70), min_size=5, max_size=5),  # beyond u64: clamped
    rdev=st.tuples(st.integers(0, 4095), st.integers(0, 2**20 - 1)),
    times=st.tuples(_NS, _NS, _NS),
    handle=st.binary(min_size=1, max_size=128),
    fsid=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    mounted_on=st.none() | st.integers(0, 2**64 - 1),
)
def test_compiled_encoder_matches_each_attribute_encoded_alone(  # type: ignore[no-untyped-def]
    request, minor, kind, perms, numbers, rdev, times, handle, fsid, mounted_on
) -> None:
    ino, nlink, uid, size, blocks = numbers
    node = Attrs(
        kind | perms, ino, 3, nlink % 2**40, uid % 2**32, 7, size, blocks, make_rdev(*rdev),
        *times,
    )  # fmt: skip
    fs = FsStat(*[n % 2**64 for n in numbers], 11)
    src = attrs.Source(node, handle, fsid, 90, minor, lambda: fs, mounted_on)
    want = request & attrs.supported(minor) & ~attrs.WRITE_ONLY
    one_by_one = b"".join(
        attrs._ENCODERS[bit](src) for bit in range(want.bit_length()) if want >> bit & 1
    )
    assert compile_encoder(want, attrs._ENCODERS)(src) == one_by_one
    assert attrs.encode(request, src) == (want, one_by_one)
