"""Filehandle operations: PUT*FH, GETFH, SAVEFH, RESTOREFH, LOOKUP, LOOKUPP, SECINFO*."""

from __future__ import annotations

import stat

from filesim.nfs.access import X, permits
from filesim.nfs.v4.const import NFS4_FHSIZE, Op, Status
from filesim.nfs.v4.context import V41, Compound, Node, operation
from filesim.nfs.v4.wire import V4Error, opaque, read_name, u32
from filesim.nfs.vfs import join, parent_of
from filesim.oncrpc.xdr import Unpacker

AUTH_SYS = 1
AUTH_NONE = 0
_SECINFO = u32(2) + u32(AUTH_SYS) + u32(AUTH_NONE)


@operation(Op.PUTFH)
def putfh(c: Compound, u: Unpacker) -> bytes:
    handle = bytes(u.opaque(NFS4_FHSIZE + 4))
    if len(handle) > NFS4_FHSIZE or not handle:
        raise V4Error(Status.BADHANDLE)
    try:
        c.set_node(c.svc.resolve(handle))
    except V4Error as exc:
        # A file removed while open stays usable for the state on it (CLOSE, LOCKU).
        if exc.status != Status.STALE or not c.svc.has_state_on(handle):
            raise
        c.set_fh(handle)
    return b""


@operation(Op.PUTROOTFH)
def putrootfh(c: Compound, u: Unpacker) -> bytes:
    c.set_node(c.svc.root_node())
    return b""


@operation(Op.PUTPUBFH)
def putpubfh(c: Compound, u: Unpacker) -> bytes:
    return putrootfh(c, u)


@operation(Op.GETFH)
def getfh(c: Compound, u: Unpacker) -> bytes:
    return opaque(c.fh())


@operation(Op.SAVEFH)
def savefh(c: Compound, u: Unpacker) -> bytes:
    c.sfh = c.fh()
    c.saved_sid = c.cur_sid
    return b""


@operation(Op.RESTOREFH)
def restorefh(c: Compound, u: Unpacker) -> bytes:
    if c.sfh is None:
        raise V4Error(Status.RESTOREFH)
    c.cfh = c.sfh
    c.cur_sid = c.saved_sid
    return b""


def _lookup_dir(c: Compound) -> Node:
    node = c.node()
    if not node.is_dir:
        raise V4Error(Status.SYMLINK if stat.S_ISLNK(node.st.st_mode) else Status.NOTDIR)
    return node


def child(c: Compound, node: Node, name: str) -> Node:
    """The node `name` in directory `node` (pseudo or real), with the lookup permission."""
    svc = c.svc
    if node.pseudo:
        assert node.depth is not None
        depth = svc.pseudo.child(node.depth, name)
        if depth is None:
            raise V4Error(Status.NOENT)
        if depth == svc.pseudo.depth:
            return svc.node_at("")
        return svc.resolve(svc.pseudo.handle(depth))
    if not permits(node.st, c.caller, X):
        raise V4Error(Status.ACCESS)
    assert node.path is not None
    return svc.node_at(join(node.path, name))


@operation(Op.LOOKUP)
def lookup(c: Compound, u: Unpacker) -> bytes:
    name = read_name(u)
    node = _lookup_dir(c)
    c.set_node(child(c, node, name))
    return b""


@operation(Op.LOOKUPP)
def lookupp(c: Compound, u: Unpacker) -> bytes:
    node = _lookup_dir(c)
    svc = c.svc
    if node.pseudo:
        assert node.depth is not None
        if node.depth == 0:
            raise V4Error(Status.NOENT)
        c.set_fh(svc.pseudo.handle(node.depth - 1))
        return b""
    assert node.path is not None
    if node.path == "":
        if not svc.pseudo.depth:
            raise V4Error(Status.NOENT)
        c.set_fh(svc.pseudo.handle(svc.pseudo.depth - 1))
        return b""
    c.set_node(svc.node_at(parent_of(node.path)))
    return b""


@operation(Op.SECINFO)
def secinfo(c: Compound, u: Unpacker) -> bytes:
    name = read_name(u)
    node = _lookup_dir(c)
    child(c, node, name)
    if c.minor:
        c.cfh = None
    return _SECINFO


@operation(Op.SECINFO_NO_NAME, minors=V41)
def secinfo_no_name(c: Compound, u: Unpacker) -> bytes:
    style = u.uint32()
    if style > 1:
        raise V4Error(Status.INVAL)
    c.node()
    if style == 1:
        lookupp(c, u)
    c.cfh = None
    return _SECINFO
