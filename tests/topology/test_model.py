"""The topology model: names, uniqueness, profile defaults and export options."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from filesim.topology import Direction, Role, StorageMode, Topology
from filesim.topology.model import DNS_LABEL, ExportOptions


def topology(*servers: dict[str, object], profile: str = "default") -> Topology:
    return Topology.model_validate({"profile": profile, "servers": list(servers)})


@pytest.mark.parametrize("name", ["a", "nas-input-1", "0", "a" * 63])
def test_dns_labels_are_server_names(name: str) -> None:
    assert DNS_LABEL.match(name)
    assert topology({"name": name, "role": "input", "fsid": 1}).servers[0].name == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "nas_1", "a.b", "a" * 64])
def test_other_names_are_refused_with_the_rule(name: str) -> None:
    assert not DNS_LABEL.match(name)
    with pytest.raises(ValidationError, match="is not a DNS label"):
        topology({"name": name, "role": "input", "fsid": 1})


@pytest.mark.parametrize("field", ["name", "fsid", "port", "node_port"])
def test_a_duplicate_names_both_servers(field: str) -> None:
    a = {"name": "a", "role": "input", "fsid": 1, "port": 3001, "node_port": 31001}
    b = {"name": "b", "role": "input", "fsid": 2, "port": 3002, "node_port": 31002}
    b[field] = a[field]
    second = "a" if field == "name" else "b"
    with pytest.raises(
        ValidationError, match=f"{field} {a[field]} is used by both 'a' and '{second}'"
    ):
        topology(a, b)


def test_an_empty_topology_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one server"):
        topology()


@pytest.mark.parametrize(
    ("profile", "role", "direction", "continuous", "mirror_deletes"),
    [
        ("default", "input", Direction.BOTH, True, True),
        ("default", "backup", Direction.FOLDER_TO_EXPORT, True, True),
        ("seed", "input", Direction.FOLDER_TO_EXPORT, False, True),
        ("seed", "output", Direction.EXPORT_TO_FOLDER, True, False),
        ("seed", "backup", Direction.FOLDER_TO_EXPORT, False, False),
    ],
)
def test_the_profile_fills_unset_sync_fields_by_role(
    profile: str, role: str, direction: Direction, continuous: bool, mirror_deletes: bool
) -> None:
    sync = topology({"name": "s", "role": role, "fsid": 1}, profile=profile).servers[0].sync
    assert (sync.direction, sync.continuous, sync.mirror_deletes) == (
        direction, continuous, mirror_deletes,
    )  # fmt: skip
    assert sync.settle_ms == 100  # not in any profile: the model's default


def test_fields_a_server_sets_win_over_its_profile() -> None:
    server = topology(
        {"name": "s", "role": "input", "fsid": 1, "sync": {"continuous": True, "settle_ms": 5}},
        profile="seed",
    ).servers[0]
    assert server.sync.continuous is True and server.sync.settle_ms == 5
    assert server.sync.direction is Direction.FOLDER_TO_EXPORT  # from the seed profile


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown profile 'prod'"):
        topology({"name": "s", "role": "input", "fsid": 1}, profile="prod")


def test_syncs_only_with_mirror_storage_and_an_active_policy() -> None:
    t = topology(
        {"name": "m", "role": "input", "fsid": 1},
        {"name": "d", "role": "input", "fsid": 2, "storage": "direct"},
        {"name": "n", "role": "input", "fsid": 3, "sync": {"direction": "none"}},
        {"name": "o", "role": "input", "fsid": 4, "sync": {"continuous": False, "initial": False}},
    )
    assert [s.syncs for s in t.servers] == [True, False, False, False]
    assert t.servers[1].storage is StorageMode.DIRECT


def test_direction_sides() -> None:
    assert [d.folder_to_export for d in Direction] == [True, True, False, False]
    assert [d.export_to_folder for d in Direction] == [True, False, True, False]


def test_enabled_and_lookup_by_name() -> None:
    t = topology(
        {"name": "a", "role": "input", "fsid": 1},
        {"name": "b", "role": "backup", "fsid": 2, "enabled": False},
    )
    assert [s.name for s in t.enabled] == ["a"]
    assert t.server("b").role is Role.BACKUP
    with pytest.raises(KeyError, match="no server named 'c' in the topology \\(known: a, b\\)"):
        t.server("c")


@pytest.mark.parametrize("path", ["data", "/data/", "//data", "/a/../b", "/a/./b"])
def test_export_paths_must_be_absolute_and_normalised(path: str) -> None:
    with pytest.raises(ValidationError, match="export path must"):
        ExportOptions(path=path)


def test_allowed_clients_are_networks() -> None:
    options = ExportOptions(allowed_clients=["10.0.0.0/8", "::1"])
    assert [str(n) for n in options.networks()] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValidationError, match=r"'ten' is not a network like 10\.0\.0\.0/8"):
        ExportOptions(allowed_clients=["ten"])


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="fsidd"):
        topology({"name": "a", "role": "input", "fsid": 1, "fsidd": 2})
