"""The state one NFS export needs at run time: its options, storage, handles and listings."""

from __future__ import annotations

import ipaddress
import os
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from filesim.nfs.access import Caller
from filesim.nfs.attrs import Attrs
from filesim.nfs.generations import Generations
from filesim.nfs.handles import HandleCodec, NodeIndex
from filesim.nfs.vfs import Vfs, VfsEntry, parent_of
from filesim.oncrpc.message import Credentials

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_VERF = struct.Struct(">Q")
WINDOWS_ANONYMOUS = 0xFFFFFFFE
"""uid and gid -2: what Windows' Client for NFS sends for `mount -o anon` when the registry
sets no AnonymousUid/AnonymousGid. Mapped to the export's anonymous ids, as root squash does."""


@dataclass
class ExportConfig:
    """What the NFS layer needs to know of a server's export options."""

    name: str
    path: str = "/data"
    fsid: int = 1
    readonly: bool = False
    sync: bool = False
    root_squash: bool = False
    anon_uid: int = 65534
    anon_gid: int = 65534
    networks: list[Network] = field(
        default_factory=lambda: [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    )
    generations_file: Path | None = None
    """Where the file generations persist (state directory); None: in memory only."""


class DirListings:
    """Directory listings kept while a client pages through them with READDIR cookies.

    A cookie is the position after an entry in the listing taken at cookie 0; the cookie
    verifier names that listing, so later pages come from the same snapshot even when the
    directory changes in between (no entry skipped or repeated within one pass).
    """

    def __init__(self, keep: int = 64, max_entries: int = 100_000) -> None:
        """At most `keep` listings and `max_entries` entries in all of them (the newest
        listing is kept whatever its size: the client paging through it needs it)."""
        self._keep = keep
        self._max_entries = max_entries
        self._listings: OrderedDict[tuple[int, bytes], list[VfsEntry]] = OrderedDict()
        self.entries = 0
        """Entries held, over all listings."""

    def listing(
        self, vfs: Vfs, path: str, ino: int, cookie: int, verifier: bytes
    ) -> tuple[list[VfsEntry], bytes]:
        if cookie:
            entries = self._listings.get((ino, verifier))
            if entries is not None:
                self._listings.move_to_end((ino, verifier))
                return entries, verifier
        entries = self._list(vfs, path, ino)
        verifier = _VERF.pack(secrets.randbits(63) | 1)
        self._listings[(ino, verifier)] = entries
        self.entries += len(entries)
        while len(self._listings) > 1 and (
            len(self._listings) > self._keep or self.entries > self._max_entries
        ):
            _, dropped = self._listings.popitem(last=False)
            self.entries -= len(dropped)
        return entries, verifier

    @staticmethod
    def _list(vfs: Vfs, path: str, ino: int) -> list[VfsEntry]:
        parent_ino = vfs.stat(parent_of(path)).st_ino if path else ino
        entries = sorted(vfs.listdir(path), key=lambda e: e.name)
        return [VfsEntry(".", ino), VfsEntry("..", parent_ino), *entries]


class Export:
    """One export's run-time state, shared by the MOUNT and NFS procedures."""

    def __init__(self, config: ExportConfig, vfs: Vfs, secret: bytes) -> None:
        """`vfs` is the export's storage with its wrappers (notification, faults) around it."""
        self.config = config
        self.vfs = vfs
        self.codec = HandleCodec(config.fsid, secret)
        self.index = NodeIndex(vfs, Generations(config.generations_file))
        self.listings = DirListings()
        self.write_verifier = os.urandom(8)  # new at every start: clients re-send unstable data
        self.root_ino = vfs.stat("").st_ino
        self.index.remember(self.root_ino, "")
        self.mounts: set[tuple[str, str]] = set()
        self._allowed: dict[str, bool] = {}
        self._callers: dict[Credentials, Caller] = {}

    @property
    def fsid(self) -> int:
        return self.config.fsid

    @property
    def readonly(self) -> bool:
        """Read-only by configuration, or for now (an injected read-only flip)."""
        return self.config.readonly or self.vfs.readonly

    def handle_for(self, st: Attrs, path: str) -> bytes:
        return self.codec.encode(self.index.node(st, path))

    def caller(self, cred: Credentials) -> Caller:
        """The identity `cred` acts as on this export (AUTH_NONE and squashed root: anonymous)."""
        caller = self._callers.get(cred)
        if caller is None:
            if len(self._callers) > 1024:
                self._callers.clear()
            caller = self._callers[cred] = self._squash(cred)
        return caller

    def _squash(self, cred: Credentials) -> Caller:
        cfg = self.config
        if not cred.is_sys or (cfg.root_squash and cred.uid == 0):
            return Caller(cfg.anon_uid, cfg.anon_gid)
        if WINDOWS_ANONYMOUS in (cred.uid, cred.gid):
            uid = cfg.anon_uid if cred.uid == WINDOWS_ANONYMOUS else cred.uid
            gid = cfg.anon_gid if cred.gid == WINDOWS_ANONYMOUS else cred.gid
            return Caller(uid, gid, tuple(g for g in cred.gids if g != WINDOWS_ANONYMOUS))
        return Caller(cred.uid, cred.gid, cred.gids)

    def allows(self, address: str) -> bool:
        allowed = self._allowed.get(address)
        if allowed is None:
            if len(self._allowed) > 4096:
                self._allowed.clear()
            allowed = self._allowed[address] = self._check_address(address)
        return allowed

    def _check_address(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.config.networks)
