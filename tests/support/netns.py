"""A private network namespace for tests that bind the standard NFS ports (111, 2049).

`NetNs()` makes one with `unshare -n` (a sleeping holder process keeps it alive), brings `lo`
up and gives it one non-loopback address (192.0.2.1/32, TEST-NET-1): glibc's AI_ADDRCONFIG
lookups (`getaddrinfo("localhost")`, rpcinfo, Ganesha) find nothing usable without one.
Commands run inside with `ns.run(...)`/`ns.popen(...)` (`nsenter --net`); a Python socket is
made inside with `ns.call(factory)` (a thread that `setns`es first: a socket belongs to the
namespace it was created in, whichever thread uses it later). The host's ports are never
touched. Needs root: elsewhere the tests skip (and fail under CI=true, which runs as root).

kclient works from inside too: QEMU's slirp turns the guest's 10.0.2.2 into 127.0.0.1 of the
namespace QEMU runs in.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
LO_ADDRESS = "192.0.2.1/32"


def require_root() -> None:
    """Skip unless this process may make network namespaces (fails under CI=true)."""
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root (unshare -n, ports 111 and 2049)")
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (util-linux, iproute2)")


class NetNs:
    """One network namespace, alive until `close()`."""

    def __init__(self, addresses: tuple[str, ...] = ()) -> None:
        require_root()
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "echo ready; exec sleep 86400"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("unshare --net did not start")
        self.pid = self._holder.pid
        self.path = f"/proc/{self.pid}/ns/net"
        self.run("ip", "link", "set", "lo", "up")
        for address in (LO_ADDRESS, *addresses):
            self.run("ip", "addr", "add", address, "dev", "lo")

    def argv(self, *command: str) -> list[str]:
        """`command` as run inside the namespace."""
        return ["nsenter", f"--net={self.path}", "--", *command]

    def run(
        self, *command: str, timeout: float = 60, check: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*command), capture_output=True, text=True, timeout=timeout, **kwargs
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} (in the namespace) failed ({proc.returncode}):\n"
                f"{proc.stderr}{proc.stdout}"
            )
        return proc

    def popen(self, *command: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*command), text=True, **kwargs)

    def call(self, factory: Callable[[], T]) -> T:
        """`factory()` run in a thread inside the namespace (sockets it makes stay there)."""
        result: list[T] = []
        errors: list[BaseException] = []

        def inside() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns: {os.strerror(err)}")
                finally:
                    os.close(fd)
                result.append(factory())
            except BaseException as exc:  # handed to the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=inside, name="netns")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]

    def close(self) -> None:
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
        if self._holder.stdout is not None:
            self._holder.stdout.close()

    def __enter__(self) -> NetNs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
