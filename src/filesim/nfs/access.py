"""Who a call acts as, and what mode bits allow it: permission checks and ACCESS3 bits."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import Protocol

from filesim.nfs.const import (
    ACCESS_DELETE,
    ACCESS_EXECUTE,
    ACCESS_EXTEND,
    ACCESS_LOOKUP,
    ACCESS_MODIFY,
    ACCESS_READ,
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a call acts as, after squashing."""

    uid: int
    gid: int
    gids: tuple[int, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.uid == 0


class Owned(Protocol):
    """What permission rules need of a node (os.stat_result and filesim's attributes fit)."""

    @property
    def st_mode(self) -> int: ...

    @property
    def st_uid(self) -> int: ...

    @property
    def st_gid(self) -> int: ...


R, W, X = 4, 2, 1


def permits(st: Owned, caller: Caller, want: int) -> bool:
    """Whether mode bits give `caller` the rwx bits `want` on the node `st`."""
    mode = st.st_mode
    if caller.is_root:
        # root may do anything but execute a file that nobody may execute
        return not (want & X) or stat.S_ISDIR(mode) or bool(mode & 0o111)
    if st.st_uid == caller.uid:
        bits = (mode >> 6) & 7
    elif st.st_gid == caller.gid or st.st_gid in caller.gids:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return bits & want == want


def access_bits(st: Owned, caller: Caller, requested: int, readonly: bool) -> int:
    """The ACCESS3 bits of `requested` that `caller` holds on `st`."""
    granted = 0
    is_dir = stat.S_ISDIR(st.st_mode)
    if permits(st, caller, R):
        granted |= ACCESS_READ
    if permits(st, caller, W) and not readonly:
        granted |= ACCESS_MODIFY | ACCESS_EXTEND
        if is_dir:
            granted |= ACCESS_DELETE
    if permits(st, caller, X):
        granted |= ACCESS_LOOKUP if is_dir else ACCESS_EXECUTE
    return granted & requested
