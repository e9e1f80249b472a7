"""How a client mounts a server: the one set of Linux NFS mount options filesim prints.

NFSv3 over TCP, with NFS and MOUNT on the one port each server has (no portmapper lookup) and
no NLM locking (filesim serves no lock manager). Used by `filesim up`, the pytest fixture, the
PersistentVolumes of `filesim k8s render` and (generated) the Helm chart's notes.
"""

from __future__ import annotations

MOUNT_OPTIONS = ("vers=3", "proto=tcp", "port={port}", "mountport={port}", "mountproto=tcp",
                 "nolock")  # fmt: skip
"""The options, with `{port}` where the server's port goes."""


def mount_options(port: int | str) -> list[str]:
    """The options for a server on `port`, as a list (a PersistentVolume's mountOptions)."""
    return [option.format(port=port) for option in MOUNT_OPTIONS]


def mount_option_string(port: int | str) -> str:
    """The options for `mount -o`, e.g. vers=3,proto=tcp,port=20490,mountport=20490,..."""
    return ",".join(mount_options(port))


def mount_command(host: str, port: int, export: str, mountpoint: str) -> str:
    """A ready-to-paste Linux mount command."""
    return f"mount -t nfs -o {mount_option_string(port)} {host}:{export} {mountpoint}"
