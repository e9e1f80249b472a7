"""The one set of mount options filesim prints, in every form it is used."""

from __future__ import annotations

from filesim.topology.mount import (
    macos_mount_command,
    mount_command,
    mount_option_string,
    mount_options,
    windows_mount_command,
)


def test_options_carry_the_port_for_nfs_and_mount() -> None:
    assert mount_options(2049) == [
        "vers=3", "proto=tcp", "port=2049", "mountport=2049", "mountproto=tcp", "nolock",
    ]  # fmt: skip
    assert mount_option_string(20490) == (
        "vers=3,proto=tcp,port=20490,mountport=20490,mountproto=tcp,nolock"
    )


def test_a_ready_to_paste_command() -> None:
    assert mount_command("127.0.0.1", 20494, "/data", "/mnt/nas-output-1") == (
        "mount -t nfs -o vers=3,proto=tcp,port=20494,mountport=20494,mountproto=tcp,nolock "
        "127.0.0.1:/data /mnt/nas-output-1"
    )


def test_standard_ports_need_only_the_version() -> None:
    assert mount_options(2049, standard=True) == ["vers=3"]
    assert mount_command("127.0.0.11", 2049, "/data", "/mnt/a", "4.1", standard=True) == (
        "mount -t nfs -o vers=4.1 127.0.0.11:/data /mnt/a"
    )


def test_macos_and_windows_spellings() -> None:
    assert macos_mount_command("127.0.0.1", 20490, "/data", "/Volumes/a") == (
        "sudo mkdir -p /Volumes/a && sudo mount -t nfs -o "
        "vers=3,tcp,port=20490,mountport=20490,nolocks 127.0.0.1:/data /Volumes/a"
    )
    assert macos_mount_command("127.0.0.11", 2049, "/data", "/Volumes/a", standard=True) == (
        "sudo mkdir -p /Volumes/a && sudo mount -t nfs -o vers=3 127.0.0.11:/data /Volumes/a"
    )
    assert windows_mount_command("127.0.0.11", "/data") == (
        "mount.exe -o anon \\\\127.0.0.11\\data N:"
    )
