"""The one set of mount options filesim prints, in every form it is used."""

from __future__ import annotations

from filesim.topology.mount import mount_command, mount_option_string, mount_options


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
