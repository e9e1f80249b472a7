"""The 22 NFSv3 procedures (RFC 1813), grouped by kind, each registered in `NFS3` once.

- `attributes`: GETATTR, SETATTR, ACCESS
- `names`: LOOKUP, READLINK and the directory changes CREATE, MKDIR, SYMLINK, MKNOD, REMOVE,
  RMDIR, RENAME, LINK
- `io`: READ, WRITE, COMMIT
- `listing`: READDIR, READDIRPLUS
- `fsinfo`: NULL, FSSTAT, FSINFO, PATHCONF

`common` holds what they share: reading handles and names, permission checks.
"""

from __future__ import annotations

from filesim.nfs.procedures import attributes, fsinfo, io, listing, names
from filesim.nfs.registry import NFS3

_MODULES = (attributes, fsinfo, io, listing, names)

if NFS3.missing():  # pragma: no cover - a procedure module lost a handler
    raise ImportError(f"NFSv3 procedures without a handler: {NFS3.missing()}")

__all__ = ["NFS3"]
