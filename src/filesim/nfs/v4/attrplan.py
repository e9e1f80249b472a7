"""One compiled encoder per fattr4 request mask: the attribute values in as few packs as can be.

READDIR encodes the same request for every entry of a page, ~15 attributes each. Called one
by one (a function per attribute, as `attrs` defines them), they cost ~6 µs an entry; most are
fixed-size numbers read from the node's `Attrs`, so a run of them goes out in one
`struct.pack` of expressions over `st`. The encoder for a mask is generated as Python source
once (the expressions below are constants of this module, never input) and kept by `attrs`.
Attributes of variable size (owner, handle, bitmaps) keep their own encoder.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from filesim.nfs.attrs import split_rdev
from filesim.nfs.v4.const import Attr, Ftype4

if TYPE_CHECKING:
    from filesim.nfs.v4.attrs import Source

Encoder = Callable[["Source"], bytes]

_FIXED: dict[int, tuple[str, str]] = {
    # attribute: (struct format, expression of its values over `st` (Attrs) and `s` (Source))
    Attr.TYPE: ("I", "_FTYPES.get(st.st_mode & 0o170000, 1)"),
    Attr.CHANGE: ("Q", "_u64(st.st_ctime_ns)"),
    Attr.SIZE: ("Q", "_u64(st.st_size)"),
    Attr.FSID: ("QQ", "*s.fsid"),
    Attr.FILEID: ("Q", "_u64(st.st_ino)"),
    Attr.MODE: ("I", "st.st_mode & 0o7777"),
    Attr.NUMLINKS: ("I", "min(st.st_nlink, 0xFFFFFFFF)"),
    Attr.RAWDEV: ("II", "*(split_rdev(st.st_rdev) if st.st_rdev else (0, 0))"),
    Attr.SPACE_USED: ("Q", "_u64(st.st_blocks * 512)"),
    Attr.TIME_ACCESS: ("qI", "*divmod(st.st_atime_ns, 1_000_000_000)"),
    Attr.TIME_METADATA: ("qI", "*divmod(st.st_ctime_ns, 1_000_000_000)"),
    Attr.TIME_MODIFY: ("qI", "*divmod(st.st_mtime_ns, 1_000_000_000)"),
}
_FTYPES = {
    stat.S_IFREG: Ftype4.REG, stat.S_IFDIR: Ftype4.DIR, stat.S_IFBLK: Ftype4.BLK,
    stat.S_IFCHR: Ftype4.CHR, stat.S_IFLNK: Ftype4.LNK, stat.S_IFSOCK: Ftype4.SOCK,
    stat.S_IFIFO: Ftype4.FIFO,
}  # fmt: skip
_MAX_U64 = (1 << 64) - 1


def _u64(value: int) -> int:
    return 0 if value < 0 else _MAX_U64 if value > _MAX_U64 else value


def _nothing(s: Source) -> bytes:
    return b""


def compile_encoder(want: int, encoders: Mapping[int, Encoder]) -> Encoder:
    """The encoder of the values of the attributes in `want` (in bit order), the same bytes
    as `encoders[bit](s)` joined for each bit set."""
    names: dict[str, object] = {"_FTYPES": {k: int(v) for k, v in _FTYPES.items()},
                                "_u64": _u64, "split_rdev": split_rdev}  # fmt: skip
    parts: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        if run:
            packer = f"_S{len(names)}"
            names[packer] = struct.Struct(">" + "".join(f for f, _ in run)).pack
            parts.append(f"{packer}({', '.join(e for _, e in run)})")
            run.clear()

    for bit in range(want.bit_length()):
        if want >> bit & 1:
            if bit in _FIXED:
                run.append(_FIXED[bit])
            else:
                flush()
                names[f"_E{bit}"] = encoders[bit]
                parts.append(f"_E{bit}(s)")
    flush()
    if not parts:
        return _nothing
    source = f"def encode(s):\n    st = s.st\n    return b''.join(({', '.join(parts)},))\n"
    exec(compile(source, f"<fattr4 encoder {want:#x}>", "exec"), names)  # only constants above
    encoder: Encoder = names["encode"]  # type: ignore[assignment]
    return encoder
