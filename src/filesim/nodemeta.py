"""What filesim keeps about a node that an unprivileged process cannot store natively.

Running without root, filesim cannot chown a file, keep S_ISUID/S_ISGID for other owners, or
create a device node. The NFS server (nfs/ownership.py) then keeps the owner, group, full mode
and device number that clients set in the node's extended attribute `user.filesim.node`, and
presents them; a device node is an empty regular file there (a placeholder). The synchroniser
reads the same attribute to know a placeholder from a file. A base module: both use it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

XATTR = "user.filesim.node"
_VERSION = "1"


@dataclass(frozen=True, slots=True)
class NodeMeta:
    """Owner, group, full st_mode (type bits included) and rdev a client gave a node."""

    uid: int
    gid: int
    mode: int
    rdev: int = 0

    @property
    def placeholder(self) -> bool:
        """Whether the node on disk stands in for a device node (an empty regular file)."""
        return stat.S_ISBLK(self.mode) or stat.S_ISCHR(self.mode)

    def encode(self) -> bytes:
        return f"{_VERSION} {self.uid} {self.gid} {self.mode:o} {self.rdev}".encode()


def decode(raw: bytes) -> NodeMeta | None:
    """The metadata in an attribute value; None for a value this version does not know."""
    try:
        version, uid, gid, mode, rdev = raw.decode("ascii").split()
        if version != _VERSION:
            return None
        return NodeMeta(int(uid), int(gid), int(mode, 8), int(rdev))
    except (UnicodeDecodeError, ValueError):
        return None
