"""The NFSv4 side of one server: its export, clients, state, locks and grace period.

One `V4Service` per export, created beside the v3 procedures and sharing their `Export`
(handles, storage, options) and the server's `LockTable`.
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from filesim.nfs.export import Export
from filesim.nfs.locks import FileKey, LockTable
from filesim.nfs.v4.attrs import Source
from filesim.nfs.v4.clients import Client, ClientTable
from filesim.nfs.v4.const import Status
from filesim.nfs.v4.context import Node
from filesim.nfs.v4.pseudo import PSEUDO_FSID, Pseudo
from filesim.nfs.v4.recovery import Recovery
from filesim.nfs.v4.stateids import LockState, OpenState, StateTable
from filesim.nfs.v4.wire import V4Error, status_of_v3
from filesim.nfs.vfs import FsStat, NfsError, status_of

log = logging.getLogger(__name__)


@dataclass
class V4Options:
    lease_s: int = 15
    grace_s: int = 15
    state_file: Path | None = None


class V4Service:
    def __init__(
        self, export: Export, options: V4Options | None = None, locks: LockTable | None = None
    ) -> None:
        self.export = export
        self.options = options or V4Options()
        self.locks = locks if locks is not None else LockTable()
        self.recovery = Recovery(self.options.state_file, self.options.grace_s)
        self.locks.graces.append(self.recovery.in_grace)
        boot = self.recovery.boot
        self.clients = ClientTable(boot, self.options.lease_s)
        self.states = StateTable(boot)
        self.pseudo = Pseudo(export.config.path)
        self.server_major = f"filesim:{export.config.name}".encode()
        self.scope = self.server_major
        self.verifier = struct.pack(">Q", boot)
        self.replies: OrderedDict[Hashable, list[bytes]] = OrderedDict()
        """4.0 duplicate request cache: replies of COMPOUNDs that changed something."""
        self.last_changed = False

    def remember_reply(self, key: Hashable, reply: list[bytes]) -> None:
        if sum(map(len, reply)) > 64 << 10:
            return
        self.replies[key] = reply
        while len(self.replies) > 1024:
            self.replies.popitem(last=False)

    @property
    def lease(self) -> int:
        return self.options.lease_s

    # -- filehandles -----------------------------------------------------------------------

    def root_node(self) -> Node:
        """The root of the pseudo-filesystem: the export's root when it is mounted at /."""
        if self.pseudo.depth == 0:
            return self.node_at("")
        return self.resolve(self.pseudo.handle(0))

    def resolve(self, handle: bytes) -> Node:
        depth = self.pseudo.depth_of(handle)
        if depth is not None:
            if depth < 0:
                raise V4Error(Status.BADHANDLE)
            return Node(handle, self.pseudo.stat(depth), None, depth)
        try:
            path, st = self.export.index.resolve(self.export.codec.decode(handle))
        except NfsError as exc:
            raise V4Error(status_of_v3(exc.status), str(exc)) from None
        except OSError as exc:
            raise V4Error(Status.IO, str(exc)) from None
        return Node(handle, st, path)

    def node_at(self, path: str) -> Node:
        try:
            st = self.export.vfs.stat(path)
        except NfsError as exc:
            raise V4Error(status_of_v3(exc.status), str(exc)) from None
        except OSError as exc:
            raise V4Error(status_of_v3(status_of(exc)), str(exc)) from None
        return Node(self.export.handle_for(st, path), st, path)

    def file_key(self, node: Node) -> FileKey:
        return FileKey(self.export.fsid, node.st.st_ino)

    def source(self, node: Node, minor: int) -> Source:
        if node.pseudo:
            assert node.depth is not None
            return Source(node.st, node.handle, PSEUDO_FSID, self.lease, minor, self.fs_stat)
        mounted_on = None
        if node.path == "" and self.pseudo.depth:
            mounted_on = self.pseudo.fileid(self.pseudo.depth - 1) + 1
        return Source(
            node.st, node.handle, (self.export.fsid, 0), self.lease, minor, self.fs_stat,
            mounted_on,
        )  # fmt: skip

    def fs_stat(self) -> FsStat:
        return self.export.vfs.statvfs()

    # -- state -------------------------------------------------------------------------------

    def expire(self, client: Client) -> None:
        """Release everything `client` holds and forget it."""
        owners = [*client.open_owners.values(), *client.lock_owners.values()]
        others = [other for owner in owners for other in owner.states]
        for other in others:
            state = self.states.states.get(other)
            if state is not None:
                self.release(state)
        for other in others:
            self.states.expired[other] = None
        while len(self.states.expired) > 4096:
            del self.states.expired[next(iter(self.states.expired))]
        client.open_owners.clear()
        client.lock_owners.clear()
        self.clients.drop(client)
        self.clients.expired_ids[client.clientid] = None
        while len(self.clients.expired_ids) > 4096:
            del self.clients.expired_ids[next(iter(self.clients.expired_ids))]
        self.recovery.forget(client.owner)

    def release(self, state: OpenState | LockState) -> None:
        """Drop one open (with its locks) or lock state."""
        if isinstance(state, LockState):
            self.locks.release_owner(state.owner.key, state.file)
            state.open.locks.pop(state.owner.name, None)
            self.states.remove(state)
            return
        for lock in list(state.locks.values()):
            self.release(lock)
        self.locks.drop_share(state.file, state.other)
        self.states.remove(state)
        if state.access & 2:
            self.closed_for_write(state)

    def closed_for_write(self, state: OpenState) -> None:
        """Tell the sync agent a file is complete when its last writer is gone."""
        if any(
            s.access & 2 for s in self.locks.shares(state.file).values()
        ):  # another open for writing remains
            return
        try:
            path = self.resolve(state.handle).path
        except V4Error:
            return
        if path is not None and state.wrote:  # makes the data stable and tells the sync agent
            self.export.vfs.commit(path, True)

    def check_lease(self, client: Client) -> None:
        """A client heard from after its lease ran out has lost its state: EXPIRED."""
        if self.clients.lapsed(client):
            if client.confirmed and not client.expired:
                log.info("NFSv4 client %r: lease expired", client.owner[:64])
                self.expire(client)
            raise V4Error(Status.EXPIRED, "lease expired")
        self.clients.renew(client)

    def reap(self) -> bool:
        """Expire every client whose lease ran out; whether any was."""
        lapsed = [c for c in list(self.clients.by_id.values()) if self.clients.lapsed(c)]
        for client in lapsed:
            log.info("NFSv4 client %r: lease expired", client.owner[:64])
            self.expire(client)
        return bool(lapsed)

    def new_file(self, key: FileKey) -> None:
        """A file was just created at `key`: state left on that inode number belonged to a
        removed file whose inode was reused, and is dropped (its stateids answer EXPIRED)."""
        stale = [s for s in self.states.states.values() if s.file == key]
        for state in stale:
            if state.other in self.states.states:
                self.release(state)
            self.states.expired[state.other] = None
        self.locks.release_file(key)

    def has_state_on(self, handle: bytes) -> bool:
        return any(
            isinstance(s, OpenState) and s.handle == handle for s in self.states.states.values()
        )

    def writers(self, key: FileKey) -> bool:
        return any(s.access & 2 for s in self.locks.shares(key).values())
