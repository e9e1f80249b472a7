"""Client records and their leases, and 4.1 sessions with their slot tables.

Client ids carry the boot epoch in their high 32 bits, so an id of an earlier run is stale.
Leases are checked lazily: a client whose lease ran out keeps its state until it is in the way
of another client (a "courteous" server), or until it comes back, when it is told it expired.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from filesim.nfs.v4.stateids import Owner

Principal = tuple[int, int]
"""(auth flavor, uid) of the credential that established a client."""


@dataclass(eq=False)
class Slot:
    seqid: int = 0
    reply: list[bytes] | None = None
    """The cached COMPOUND reply of `seqid` (None: not cached)."""
    crc: int = 0
    """Checksum of the request of `seqid`: a retry must be the same request."""
    in_progress: bool = False


@dataclass(frozen=True)
class ChannelAttrs:
    headerpadsize: int
    maxrequestsize: int
    maxresponsesize: int
    maxresponsesize_cached: int
    maxoperations: int
    maxrequests: int
    rdma_ird: tuple[int, ...] = ()


@dataclass(eq=False)
class Session:
    sessionid: bytes
    client: Client
    fore: ChannelAttrs
    back: ChannelAttrs
    flags: int
    cb_program: int
    slots: list[Slot] = field(default_factory=list)
    back_bound: bool = False

    def __post_init__(self) -> None:
        if not self.slots:
            self.slots = [Slot() for _ in range(self.fore.maxrequests)]


@dataclass(eq=False)
class Client:
    clientid: int
    owner: bytes
    verifier: bytes
    principal: Principal
    minor: int
    expires: float
    confirmed: bool = False
    confirm: bytes = b""
    callback: tuple[str, str] = ("tcp", "0.0.0.0.0.0")
    cs_seq: int = 1
    """4.1: the sequence id the next CREATE_SESSION must carry."""
    cs_reply: bytes | None = None
    reclaim_complete: bool = False
    may_reclaim: bool = False
    """Known from before the restart: may reclaim state during the grace period."""
    expired: bool = False
    sessions: dict[bytes, Session] = field(default_factory=dict)
    open_owners: dict[bytes, Owner] = field(default_factory=dict)
    lock_owners: dict[bytes, Owner] = field(default_factory=dict)

    def owner_of(self, name: bytes, lock: bool) -> Owner | None:
        return (self.lock_owners if lock else self.open_owners).get(name)

    def new_owner(self, name: bytes, lock: bool) -> Owner:
        owner = Owner(self, name, lock)
        (self.lock_owners if lock else self.open_owners)[name] = owner
        return owner

    def has_state(self) -> bool:
        return any(o.states for o in self.open_owners.values()) or any(
            o.states for o in self.lock_owners.values()
        )


class ClientTable:
    """Every client record of the server: by id, and confirmed/unconfirmed by owner."""

    def __init__(self, boot: int, lease: int) -> None:
        self.boot = boot & 0xFFFFFFFF
        self.lease = lease
        self._next = 1
        self.by_id: dict[int, Client] = {}
        self.confirmed: dict[bytes, Client] = {}
        self.unconfirmed: dict[bytes, Client] = {}
        self.sessions: dict[bytes, Session] = {}
        self.expired_ids: dict[int, None] = {}
        """Ids of clients expired lately: their use gets EXPIRED rather than STALE_CLIENTID."""

    def new(self, owner: bytes, verifier: bytes, principal: Principal, minor: int) -> Client:
        clientid = (self.boot << 32) | self._next
        self._next += 1
        client = Client(clientid, owner, verifier, principal, minor, self.expiry())
        self.by_id[clientid] = client
        return client

    def expiry(self) -> float:
        return time.monotonic() + self.lease

    def renew(self, client: Client) -> None:
        client.expires = self.expiry()

    @staticmethod
    def lapsed(client: Client) -> bool:
        return client.expired or time.monotonic() > client.expires

    def stale(self, clientid: int) -> bool:
        return clientid >> 32 != self.boot

    def drop(self, client: Client) -> None:
        """Forget `client` and its sessions (its state must have been released first)."""
        self.by_id.pop(client.clientid, None)
        if self.confirmed.get(client.owner) is client:
            del self.confirmed[client.owner]
        if self.unconfirmed.get(client.owner) is client:
            del self.unconfirmed[client.owner]
        for sid in list(client.sessions):
            self.sessions.pop(sid, None)
        client.sessions.clear()
        client.expired = True

    def new_session(
        self, client: Client, fore: ChannelAttrs, back: ChannelAttrs, flags: int, cb_program: int
    ) -> Session:
        sessionid = client.clientid.to_bytes(8, "big") + os.urandom(8)
        session = Session(sessionid, client, fore, back, flags, cb_program)
        client.sessions[sessionid] = session
        self.sessions[sessionid] = session
        return session

    def drop_session(self, session: Session) -> None:
        self.sessions.pop(session.sessionid, None)
        session.client.sessions.pop(session.sessionid, None)
