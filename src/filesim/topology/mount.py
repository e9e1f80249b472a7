"""How a client mounts a server: the one set of NFS mount options filesim prints.

NFSv3 over TCP, with NFS and MOUNT on the one port each server has (no portmapper lookup) and
no NLM locking (filesim serves no lock manager); or NFSv4.x, which needs only that port. Used by
`filesim up`, the pytest fixture, the PersistentVolumes of `filesim k8s render`, (generated)
the Helm chart's notes and the dashboard, which also shows the macOS and Windows spellings
derived here from the same options.
"""

from __future__ import annotations

MOUNT_OPTIONS = ("vers=3", "proto=tcp", "port={port}", "mountport={port}", "mountproto=tcp",
                 "nolock")  # fmt: skip
"""The options, with `{port}` where the server's port goes."""
MOUNT_OPTIONS_V4 = ("vers={version}", "proto=tcp", "port={port}")
NFS_VERSIONS = ("3", "4.0", "4.1", "4.2")


def mount_options(port: int | str, version: str = "3") -> list[str]:
    """The options for a server on `port`, as a list (a PersistentVolume's mountOptions)."""
    options = MOUNT_OPTIONS if version == "3" else MOUNT_OPTIONS_V4
    return [option.format(port=port, version=version) for option in options]


def mount_option_string(port: int | str, version: str = "3") -> str:
    """The options for `mount -o`, e.g. vers=3,proto=tcp,port=20490,mountport=20490,..."""
    return ",".join(mount_options(port, version))


def mount_command(host: str, port: int, export: str, mountpoint: str, version: str = "3") -> str:
    """A ready-to-paste Linux mount command."""
    return f"mount -t nfs -o {mount_option_string(port, version)} {host}:{export} {mountpoint}"


MACOS_SPELLING = {"proto=tcp": "tcp", "mountproto=tcp": None, "nolock": "nolocks"}
"""macOS `mount_nfs` names for the Linux options (None: not needed there)."""


def macos_mount_command(host: str, port: int, export: str, mountpoint: str) -> str:
    """A ready-to-paste macOS mount command (`mount_nfs` options)."""
    options = []
    for option in mount_options(port):
        spelled = MACOS_SPELLING.get(option, option)
        if spelled is not None:
            options.append(spelled)
    return f"sudo mount -t nfs -o {','.join(options)} {host}:{export} {mountpoint}"


WINDOWS_PORT = 2049
"""Windows' NFS client takes no port option: it finds NFS (2049) through the portmapper (111)."""


def windows_mount_command(host: str, export: str, drive: str = "Z:") -> str:
    """A Windows (Client for NFS) mount command: NFSv3 without locks, anonymous access. It works
    only against a server on the standard ports (see `WINDOWS_PORT`)."""
    share = export.strip("/").replace("/", "\\")
    return f"mount.exe -o anon,nolock,mtype=hard \\\\{host}\\{share} {drive}"
