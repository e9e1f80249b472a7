"""File handles: opaque to clients, bound to one export, stable across restarts, unforgeable,
and never naming a file other than the one they were issued for.

A handle is `version | fsid | inode | generation | birth | file type | mac`, where the MAC is
an HMAC of the rest under a secret that persists in the state directory. A client can neither
invent a handle for an inode nor move one to another export. Inode numbers are reused once a
file is gone; the generation (bumped when this server removes the inode's last name, see
`filesim.nfs.generations`) and the birth time (where the platform reports it: removals behind
the server's back) make a handle of the old file answer STALE rather than reach the new one.
The inode is turned back into a path by `NodeIndex`: a map filled as clients look names up,
verified by lstat on every use, and rebuilt by a search of the export when stale (after a
restart, or a rename done behind the server's back). On an event loop thread the search is
bounded (`bound_searches`): past `LOOP_BUDGET` entries it stops with `NotFoundYet`, and the
call is answered from a thread (NFSv3: the server runs it again there) or asked again later
(NFSv4: DELAY, while a thread searches). An inode a whole search did not find answers STALE
at once for `GONE_S`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import struct
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor
from pathlib import Path
from typing import NamedTuple

from filesim.nfs.attrs import Attrs
from filesim.nfs.generations import Generations
from filesim.nfs.vfs import NfsError, SearchTooLong, Vfs
from filesim.oncrpc.programs import NfsStat

LOOP_BUDGET = 2000
"""Directory entries a handle search may read on an event loop (about a millisecond)."""
GONE_S = 2.0
"""How long an inode a whole search did not find is answered STALE without searching again
(four clients replaying a stale handle cost one search, not one each per call)."""
_local = threading.local()


def bound_searches() -> None:
    """Searches made on this thread (an event loop's) stop after `LOOP_BUDGET` entries."""
    _local.budget = LOOP_BUDGET


class NotFoundYet(SearchTooLong):
    """The node of a handle needs a longer search than this thread may make."""

    def __init__(self, ino: int) -> None:
        super().__init__(f"inode {ino}: searching the export")
        self.ino = ino


_VERSION = 2
_BODY = struct.Struct(">BIQIIB")
_V1 = 1  # before generations: still accepted, as generation 0 with no birth time
_BODY_V1 = struct.Struct(">BIQB")
_MAC_LEN = 12
HANDLE_LEN = _BODY.size + _MAC_LEN
_V1_LEN = _BODY_V1.size + _MAC_LEN
_CACHE_MAX = 65536
"""Entries the decode cache holds before it starts again (bounded memory)."""
_ISSUED_MAX = 16384
"""Entries the cache of issued handles holds (~200 bytes each: ~3 MiB at most per export)."""


def load_secret(path: Path) -> bytes:
    """The handle secret in `path`, created on first use (so handles survive restarts).

    Safe when several processes start at once on one state directory (a pod's server and
    sync containers): the first to link its candidate into place wins, the others read it.
    """
    existing = _read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(candidate, path)  # atomic, and fails if another process got there first
    except FileExistsError:
        pass
    finally:
        candidate.unlink(missing_ok=True)
    secret = _read_secret(path)
    if secret is None:
        raise OSError(f"cannot read the handle secret {path}")
    return secret


def _read_secret(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if len(data) >= 16 else None


class Node(NamedTuple):
    """What a handle names: an inode number, its generation, a tag of its birth time (0:
    unknown) and the file type it had (stat.S_IFMT >> 12)."""

    ino: int
    kind: int
    gen: int = 0
    birth: int = 0

    @classmethod
    def of(cls, st: Attrs, gen: int) -> Node:
        # tuple.__new__: a NamedTuple's own __new__ is a Python function (every LOOKUP and
        # READDIRPLUS entry makes a node)
        return _new(cls, (st.st_ino, (st.st_mode & 0o170000) >> 12, gen, birth_tag(st)))


_new = tuple.__new__


def birth_tag(st: Attrs) -> int:
    """32 bits of `st`'s birth time (never 0 when it is known; 0 when it is not)."""
    ns = st.st_birthtime_ns
    if ns is None:
        return 0
    return ((ns ^ (ns >> 32)) & 0xFFFFFFFF) or 1


class HandleCodec:
    def __init__(self, fsid: int, secret: bytes) -> None:
        self.fsid = fsid
        # keyed once: hmac.digest(secret, body, "sha256") looks the digest up and keys it again
        # for every handle (2.3 against 1.6 us a MAC); the same MAC, so old handles stay valid
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._cache: dict[bytes, Node] = {}
        self._handles: dict[Node, bytes] = {}
        """Handles already issued: a LOOKUP or CREATE would otherwise compute an HMAC each time
        (a handle depends on nothing but the node, so it never goes out of date)."""

    def _mac(self, body: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(body)
        return mac.digest()[:_MAC_LEN]

    def encode(self, node: Node) -> bytes:
        handle = self._handles.get(node)
        if handle is not None:
            return handle
        body = _BODY.pack(_VERSION, self.fsid, node.ino, node.gen, node.birth, node.kind)
        if len(self._handles) > _ISSUED_MAX:
            self._handles.clear()
        handle = self._handles[node] = body + self._mac(body)
        return handle

    def decode(self, handle: bytes | memoryview) -> Node:
        """The node `handle` names; NFS3ERR_BADHANDLE when it is not one of ours."""
        key = bytes(handle)
        node = self._cache.get(key)
        if node is not None:
            return node
        if len(key) == HANDLE_LEN:
            version, fsid, ino, gen, birth, kind = _BODY.unpack_from(key)
            size = _BODY.size
        elif len(key) == _V1_LEN:
            version, fsid, ino, kind = _BODY_V1.unpack_from(key)
            gen, birth, size = 0, 0, _BODY_V1.size
            version = _VERSION if version == _V1 else -1
        else:
            raise NfsError(NfsStat.BADHANDLE, f"handle of {len(key)} bytes")
        if version != _VERSION or not hmac.compare_digest(self._mac(key[:size]), key[size:]):
            raise NfsError(NfsStat.BADHANDLE, "handle not issued by this server")
        if fsid != self.fsid:
            raise NfsError(NfsStat.STALE, f"handle of another export (fsid {fsid})")
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        node = self._cache[key] = Node(ino, kind, gen, birth)
        return node


class NodeIndex:
    """Maps inode numbers to export-relative paths, verified against the filesystem."""

    def __init__(self, vfs: Vfs, generations: Generations) -> None:
        self._vfs = vfs
        self.generations = generations
        self._paths: dict[int, str] = {}
        self._gone: OrderedDict[int, float] = OrderedDict()
        self._searching: set[int] = set()
        self.background: Executor | None = None
        """Where `search_later` searches (the server's executor); None: nowhere."""

    def remember(self, ino: int, path: str) -> None:
        self._paths[ino] = path
        if self._gone:  # mostly empty: no pop to try
            self._gone.pop(ino, None)

    def node(self, st: Attrs, path: str) -> Node:
        """The node `st` is, at `path`, remembered for resolving its handle later."""
        self.remember(st.st_ino, path)
        return Node.of(st, self.generations.of(st.st_ino))

    def forget(self, st: Attrs) -> None:
        """The name of `st` (its attributes before) was removed by this server: when that
        was its last name, handles issued for it are stale from now on."""
        self._paths.pop(st.st_ino, None)
        if stat.S_ISDIR(st.st_mode) or st.st_nlink <= 1:
            self.generations.bump(st.st_ino)

    def resolve(self, node: Node, bounded: bool = True) -> tuple[str, Attrs]:
        """(path, lstat) of `node`; NFS3ERR_STALE when it no longer exists in the export,
        NotFoundYet when finding it takes longer than this thread may search (unless not
        `bounded`: then the search goes on, whatever this thread is)."""
        ino = node.ino
        path = self._paths.get(ino)
        if path is not None:
            try:
                st = self._vfs.stat(path)
                if st.st_ino == ino:
                    return path, self._same_file(node, st)
            except OSError:
                pass
        found = self._search(ino, getattr(_local, "budget", None) if bounded else None)
        if found is None:
            raise NfsError(NfsStat.STALE, f"inode {ino} is gone")
        st = self._same_file(node, self._vfs.stat(found))
        return found, st

    def _search(self, ino: int, budget: int | None) -> str | None:
        gone = self._gone.get(ino)
        if gone is not None and time.monotonic() - gone < GONE_S:
            return None
        try:
            found = self._vfs.find(ino, budget)
        except SearchTooLong:
            raise NotFoundYet(ino) from None
        if found is None:
            self._paths.pop(ino, None)
            self._gone[ino] = time.monotonic()
            while len(self._gone) > 1024:
                self._gone.popitem(last=False)
        else:
            self.remember(ino, found)
        return found

    def search_later(self, ino: int) -> bool:
        """Search for `ino` in the background (once at a time); False when there is none."""
        if self.background is None:
            return False
        if ino not in self._searching:
            self._searching.add(ino)
            self.background.submit(self._search_now, ino)
        return True

    def _search_now(self, ino: int) -> None:
        try:
            self._search(ino, None)
        finally:
            self._searching.discard(ino)

    def _same_file(self, node: Node, st: Attrs) -> Attrs:
        """`st` when it is the very file `node` named, not a later one with its inode."""
        if stat.S_IFMT(st.st_mode) >> 12 != node.kind:
            raise NfsError(NfsStat.STALE, f"inode {node.ino} is now another file")
        if node.gen != self.generations.of(node.ino):
            raise NfsError(NfsStat.STALE, f"inode {node.ino} was removed and reused")
        birth = birth_tag(st)
        if node.birth and birth and birth != node.birth:
            raise NfsError(NfsStat.STALE, f"inode {node.ino} is now another file")
        return st

    def renamed(self, src: str, dst: str) -> None:
        """Rewrite the paths under `src` after a rename to `dst`."""
        prefix = src + "/"
        for ino, path in list(self._paths.items()):
            if path == src:
                self._paths[ino] = dst
            elif path.startswith(prefix):
                self._paths[ino] = dst + path[len(src) :]
