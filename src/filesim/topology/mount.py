"""How a client mounts a server: the one set of NFS mount options filesim prints.

Custom ports (the default): NFSv3 over TCP with NFS and MOUNT on the one port each server has,
so no portmapper lookup, and no NLM locking (the lock manager is found through port 111 only);
or NFSv4.x, which needs only that port. Standard ports: the server is where a real NAS is (NFS
2049, rpcbind 111), so a client needs nothing but the version, and NFSv3 locks work.

Used by `filesim up`, the pytest fixture, the PersistentVolumes of `filesim k8s render`,
(generated) the Helm chart's notes and the dashboard, which also shows the macOS and Windows
spellings derived here from the same options.
"""

from __future__ import annotations

MOUNT_OPTIONS = ("vers=3", "proto=tcp", "port={port}", "mountport={port}", "mountproto=tcp",
                 "nolock")  # fmt: skip
"""The options, with `{port}` where the server's port goes."""
MOUNT_OPTIONS_V4 = ("vers={version}", "proto=tcp", "port={port}")
STANDARD_OPTIONS = ("vers={version}",)
"""Standard ports: everything else is found the way production finds it (rpcbind on 111)."""
NFS_VERSIONS = ("3", "4.0", "4.1", "4.2")


def mount_options(port: int | str, version: str = "3", *, standard: bool = False) -> list[str]:
    """The options for a server on `port`, as a list (a PersistentVolume's mountOptions);
    `standard`: the server is on the standard ports and `port` is not needed."""
    if standard:
        options: tuple[str, ...] = STANDARD_OPTIONS
    else:
        options = MOUNT_OPTIONS if version == "3" else MOUNT_OPTIONS_V4
    return [option.format(port=port, version=version) for option in options]


def mount_option_string(port: int | str, version: str = "3", *, standard: bool = False) -> str:
    """The options for `mount -o`, e.g. vers=3,proto=tcp,port=20490,mountport=20490,..."""
    return ",".join(mount_options(port, version, standard=standard))


def mount_command(
    host: str, port: int, export: str, mountpoint: str, version: str = "3", *,
    standard: bool = False,
) -> str:  # fmt: skip
    """A ready-to-paste Linux mount command."""
    options = mount_option_string(port, version, standard=standard)
    return f"mount -t nfs -o {options} {host}:{export} {mountpoint}"


MACOS_SPELLING = {"proto=tcp": "tcp", "mountproto=tcp": None, "nolock": "nolocks"}
"""macOS `mount_nfs` names for the Linux options (None: not needed there)."""


def macos_mount_command(
    host: str, port: int, export: str, mountpoint: str, *, standard: bool = False
) -> str:
    """A ready-to-paste macOS command (`mount_nfs` options; the mount point must exist, and an
    address other than 127.0.0.1 needs `sudo ifconfig lo0 alias ADDRESS up` first)."""
    options = []
    for option in mount_options(port, standard=standard):
        spelled = MACOS_SPELLING.get(option, option)
        if spelled is not None:
            options.append(spelled)
    return (
        f"sudo mkdir -p {mountpoint} && "
        f"sudo mount -t nfs -o {','.join(options)} {host}:{export} {mountpoint}"
    )


WINDOWS_PORT = 2049
"""Windows' NFS client takes no port option: it finds NFS (2049) through the portmapper (111)."""


def windows_mount_command(host: str, export: str, drive: str = "N:") -> str:
    """A Windows (Client for NFS) mount command: NFSv3 with locking (NLM) and anonymous access
    (uid/gid -2, or AnonymousUid/AnonymousGid from the registry). `mount.exe`, because in
    PowerShell `mount` is an alias of New-PSDrive. It works only against a server on the
    standard ports (see `WINDOWS_PORT`)."""
    share = export.strip("/").replace("/", "\\")
    return f"mount.exe -o anon \\\\{host}\\{share} {drive}"
