"""Shared state of one verify run: NFS connections, probe names, waiting and cleaning up.

Every file the checks create is named `.filesim-verify-<run token>-<label>` and recorded here,
so that `cleanup` removes exactly those (in the folder and over NFS) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filesim.nfs.const import Ftype
from filesim.nfsclient.client import NfsClient, NfsClientError, NfsStatusError
from filesim.oncrpc.programs import NfsStat
from filesim.topology.layout import TEMP_PREFIX
from filesim.verify.results import CheckFailed
from filesim.verify.target import ServerTarget, Target
from filesim.waiting import WaitTimeout, poll_until

PROBE_PREFIX = ".filesim-verify-"


@dataclass(frozen=True)
class Limits:
    folder_to_nfs_s: float = 30.0
    nfs_to_folder_s: float = 60.0
    stays_gone_s: float = 3.0
    """How long a consumed file must stay gone (a resurrection shows within a rescan/settle)."""
    quiet_s: float = 3.0
    """How long the sync counters must stay still after the loop test's writes."""
    poll_s: float = 0.05
    nfs_timeout_s: float = 10.0


@dataclass
class Session:
    target: Target
    limits: Limits = field(default_factory=Limits)
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    _clients: dict[str, tuple[NfsClient, bytes]] = field(default_factory=dict)
    _probes: list[tuple[ServerTarget, str]] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    """Server name -> why it could not be reached; later checks on it fail fast."""

    def __post_init__(self) -> None:
        self.unreachable.update(self.target.unreachable)

    def probe_name(self, label: str) -> str:
        return f"{PROBE_PREFIX}{self.token}-{label}"

    def track(self, server: ServerTarget, name: str) -> str:
        """Remember a probe (file or directory at the export root) for `cleanup`."""
        self._probes.append((server, name))
        return name

    # ---------------------------------------------------------------- NFS
    def nfs(self, server: ServerTarget) -> tuple[NfsClient, bytes]:
        """A connected client and the export's root handle (MNT once per server)."""
        if server.name in self.unreachable:
            raise CheckFailed(f"not checked: {server.name} is unreachable")
        if server.name not in self._clients:
            client = NfsClient(server.host, server.port, timeout=self.limits.nfs_timeout_s)
            try:
                root = client.mnt(server.export)
            except NfsClientError:
                client.close()
                raise
            self._clients[server.name] = (client, root)
        return self._clients[server.name]

    def disconnect(self) -> None:
        for client, _ in self._clients.values():
            client.close()
        self._clients.clear()

    def nfs_read(self, server: ServerTarget, path: str) -> bytes | None:
        """The content of `path` over NFS, or None while it does not exist."""
        client, root = self.nfs(server)
        try:
            return client.read_all(client.walk(root, path))
        except NfsStatusError as exc:
            if exc.status in (NfsStat.NOENT, NfsStat.STALE):
                return None
            raise

    def nfs_names(self, server: ServerTarget) -> set[str]:
        client, root = self.nfs(server)
        return set(client.listdir(root))

    # ---------------------------------------------------------------- folder
    def folder(self, server: ServerTarget) -> Path:
        if server.folder is None:
            raise CheckFailed(
                f"the folder of {server.name} is not reachable from this machine "
                "(on Kubernetes, pass --data-dir with this machine's view of the host folders)"
            )
        if not server.folder.is_dir():
            raise CheckFailed(f"the folder of {server.name} ({server.folder}) does not exist")
        return server.folder

    def folder_read(self, server: ServerTarget, path: str) -> bytes | None:
        try:
            return (self.folder(server) / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def folder_write(self, server: ServerTarget, path: str, data: bytes) -> None:
        """Write like a tester would, but atomically so the sync never sees half a probe.

        The partial file carries the synchroniser's temporary prefix, which its scanner ignores.
        """
        final = self.folder(server) / path
        partial = final.with_name(f"{TEMP_PREFIX}verify-{self.token}-{final.name}")
        partial.write_bytes(data)
        os.replace(partial, final)

    # ---------------------------------------------------------------- waiting
    def wait_for(self, condition: Callable[[], bool], limit: float, what: str) -> float:
        """Poll `condition` until true and return the time it took; fail after `limit`."""
        start = time.monotonic()
        try:
            poll_until(condition, limit, interval=self.limits.poll_s, what=what)
        except WaitTimeout:
            elapsed = time.monotonic() - start
            raise CheckFailed(f"{what}: not within {limit:g} s", elapsed) from None
        return time.monotonic() - start

    def stays(self, condition: Callable[[], bool], duration: float, what: str) -> None:
        """Fail if `condition` stops holding at any poll during `duration`."""
        try:
            poll_until(lambda: not condition(), duration, interval=max(self.limits.poll_s, 0.1))
        except WaitTimeout:
            return  # it held throughout
        raise CheckFailed(what)

    # ---------------------------------------------------------------- cleanup
    def cleanup(self, batch: int = 2, limit_s: float = 30.0) -> list[str]:
        """Remove every probe on both sides until it stays gone; returns what could not be.

        Probes go `batch` at a time, each batch gone everywhere before the next: the sync halts
        rather than mirror a side that suddenly lost every file (it looks like an unmounted
        folder), and removing all probes at once from an otherwise empty folder would be that.
        """
        left: list[tuple[ServerTarget, str]] = []
        probes = list(dict.fromkeys(self._probes))
        for server in dict.fromkeys(s for s, _ in probes):
            names = [n for s, n in probes if s == server]
            for i in range(0, len(names), batch):
                left += self._remove_batch(server, names[i : i + batch], limit_s)
        self._probes = left
        self.disconnect()
        return [f"{s.name}: {n}" for s, n in left]

    def _remove_batch(
        self, server: ServerTarget, names: list[str], limit_s: float
    ) -> list[tuple[ServerTarget, str]]:
        pending = names

        def gone() -> bool:
            nonlocal pending
            for name in pending:
                self._remove_everywhere(server, name)
            time.sleep(0.3)  # a sync in flight may bring a probe back once
            pending = [n for n in pending if self._exists_anywhere(server, n)]
            return not pending

        with contextlib.suppress(WaitTimeout):
            poll_until(gone, limit_s, interval=0, what="the probes to stay removed")
        return [(server, n) for n in pending]

    def _remove_everywhere(self, server: ServerTarget, name: str) -> None:
        assert name.startswith(PROBE_PREFIX), name  # never remove anything but our probes
        if server.folder is not None:
            path = server.folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if not server.readonly and server.name not in self.unreachable:
            try:
                self._nfs_remove_tree(server, name)
            except NfsClientError:
                self._clients.pop(server.name, None)

    def _nfs_remove_tree(self, server: ServerTarget, name: str) -> None:
        client, root = self.nfs(server)
        try:
            fh, attrs = client.lookup(root, name)
        except NfsStatusError as exc:
            if exc.status == NfsStat.NOENT:
                return
            raise
        if attrs is not None and attrs.type is Ftype.DIR:
            for child in client.readdirplus(fh):
                if child.attrs is not None and child.attrs.type is Ftype.DIR:
                    client.rmdir(fh, child.name)
                else:
                    client.remove(fh, child.name)
            client.rmdir(root, name)
        else:
            client.remove(root, name)

    def _exists_anywhere(self, server: ServerTarget, name: str) -> bool:
        if server.folder is not None and os.path.lexists(server.folder / name):
            return True
        if server.name in self.unreachable:
            return False
        try:
            client, root = self.nfs(server)
            return name in client.listdir(root)
        except (NfsClientError, CheckFailed):
            return False
