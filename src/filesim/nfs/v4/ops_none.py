"""Operations filesim does not offer (delegations, named attributes, pNFS, SSV, copy offload,
xattrs): each answers NFS4ERR_NOTSUPP in the minor versions that define it."""

from __future__ import annotations

from filesim.nfs.v4.const import Op, Status
from filesim.nfs.v4.context import ALL, V41, V42, Compound, operation
from filesim.nfs.v4.wire import V4Error
from filesim.oncrpc.xdr import Unpacker


def _notsupp(c: Compound, u: Unpacker) -> bytes:
    raise V4Error(Status.NOTSUPP)


for _op in (Op.DELEGPURGE, Op.DELEGRETURN, Op.OPENATTR):
    operation(_op, minors=ALL)(_notsupp)
for _op in (
    Op.GET_DIR_DELEGATION, Op.GETDEVICEINFO, Op.GETDEVICELIST, Op.LAYOUTCOMMIT, Op.LAYOUTGET,
    Op.LAYOUTRETURN, Op.SET_SSV, Op.WANT_DELEGATION,
):  # fmt: skip
    operation(_op, minors=V41)(_notsupp)
for _op in (
    Op.COPY, Op.COPY_NOTIFY, Op.IO_ADVISE, Op.LAYOUTERROR,
    Op.LAYOUTSTATS, Op.OFFLOAD_CANCEL, Op.OFFLOAD_STATUS, Op.READ_PLUS, Op.WRITE_SAME,
    Op.CLONE, Op.GETXATTR, Op.SETXATTR, Op.LISTXATTRS, Op.REMOVEXATTR,
):  # fmt: skip
    operation(_op, minors=V42)(_notsupp)
