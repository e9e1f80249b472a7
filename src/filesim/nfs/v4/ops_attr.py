"""Attribute operations: GETATTR, SETATTR, VERIFY, NVERIFY, ACCESS."""

from __future__ import annotations

import stat

from filesim.nfs import policy
from filesim.nfs.access import R, W, X, permits
from filesim.nfs.v4 import attrs
from filesim.nfs.v4.const import (
    ACCESS4_DELETE,
    ACCESS4_EXECUTE,
    ACCESS4_EXTEND,
    ACCESS4_LOOKUP,
    ACCESS4_MODIFY,
    ACCESS4_READ,
    Attr,
    Op,
    Status,
)
from filesim.nfs.v4.context import Compound, operation, ruled, storage
from filesim.nfs.v4.stateids import OpenState
from filesim.nfs.v4.wire import V4Error, bitmap, read_bitmap, read_stateid, u32
from filesim.oncrpc.xdr import Unpacker

_ALL_ACCESS = 0x3F
_NO_ATTRS = bitmap(0)


@operation(Op.GETATTR)
def getattr_(c: Compound, u: Unpacker) -> bytes:
    request = read_bitmap(u)
    attrs.check_readable(request)
    node = c.node()
    return attrs.fattr4(request, c.svc.source(node, c.minor))


def _verify(c: Compound, u: Unpacker) -> bool:
    mask, values = attrs.read_fattr4(u)
    if mask & (1 << Attr.RDATTR_ERROR):
        raise V4Error(Status.INVAL, "rdattr_error in VERIFY")
    attrs.check_readable(mask)
    if mask & ~attrs.supported(c.minor):
        raise V4Error(Status.ATTRNOTSUPP)
    node = c.node()
    _, ours = attrs.encode(mask, c.svc.source(node, c.minor))
    return bytes(values) == ours


@operation(Op.VERIFY)
def verify(c: Compound, u: Unpacker) -> bytes:
    if not _verify(c, u):
        raise V4Error(Status.NOT_SAME)
    return b""


@operation(Op.NVERIFY)
def nverify(c: Compound, u: Unpacker) -> bytes:
    if _verify(c, u):
        raise V4Error(Status.SAME)
    return b""


@operation(Op.SETATTR, mutating=True)
def setattr_(c: Compound, u: Unpacker) -> bytes:
    sid = read_stateid(u)
    mask, values = attrs.read_fattr4(u)
    try:
        return _setattr(c, sid, mask, values)
    except V4Error as exc:
        raise V4Error(exc.status, str(exc), _NO_ATTRS) from None


def _setattr(c: Compound, sid: object, mask: int, values: memoryview) -> bytes:
    from filesim.nfs.v4.ops_io import check_io_stateid

    node = c.node()
    set_attrs = attrs.decode_settable(mask, values, c.minor)
    if node.pseudo:
        raise V4Error(Status.ROFS)
    assert node.path is not None
    if set_attrs.size is not None:
        if stat.S_ISDIR(node.st.st_mode):
            raise V4Error(Status.ISDIR)
        if not stat.S_ISREG(node.st.st_mode):
            raise V4Error(Status.INVAL)
        state = check_io_stateid(c, node, sid, write=True)  # type: ignore[arg-type]
        if isinstance(state, OpenState):
            state.wrote = True
    allowed = ruled(lambda: policy.settable(node.st, c.caller, set_attrs))
    path = node.path
    storage(lambda: c.export.vfs.setattr(path, allowed))
    return bitmap(mask)


@operation(Op.ACCESS)
def access(c: Compound, u: Unpacker) -> bytes:
    requested = u.uint32()
    if requested & ~_ALL_ACCESS:
        raise V4Error(Status.INVAL, "unknown access bits")
    node = c.node()
    st, caller = node.st, c.caller
    is_dir = stat.S_ISDIR(st.st_mode)
    granted = 0
    if permits(st, caller, R):
        granted |= ACCESS4_READ
    writable = not node.pseudo and not c.export.readonly
    if permits(st, caller, W) and writable:
        granted |= ACCESS4_MODIFY | ACCESS4_EXTEND
        if is_dir:
            granted |= ACCESS4_DELETE
    if permits(st, caller, X):
        granted |= ACCESS4_LOOKUP if is_dir else ACCESS4_EXECUTE
    supported = requested
    if not is_dir:
        supported &= ~(ACCESS4_LOOKUP | ACCESS4_DELETE)
    else:
        supported &= ~ACCESS4_EXECUTE
    return u32(supported) + u32(granted & supported)
