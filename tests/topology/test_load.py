"""Loading topology files: the built-in preset, profiles, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from filesim.topology import (
    TopologyError,
    default_topology,
    dump_topology,
    load_topology,
    parse_topology,
)


def test_the_builtin_topology_is_the_production_one() -> None:
    topology = default_topology()
    assert [(s.name, s.role.value, s.fsid) for s in topology.servers] == [
        ("nas-input-1", "input", 1), ("nas-input-2", "input", 2), ("nas-input-3", "input", 3),
        ("nas-backup", "backup", 4), ("nas-output-1", "output", 5),
        ("nas-output-2", "output", 6), ("nas-output-3", "output", 7),
    ]  # fmt: skip
    assert [s.name for s in topology.servers if s.readonly] == ["nas-backup"]
    assert load_topology(None) == topology
    assert load_topology(None, "seed") == default_topology("seed") != topology


def test_a_file_with_a_profile_override(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("profile: default\nservers:\n  - {name: a, role: input, fsid: 1}\n")
    assert load_topology(path).profile == "default"
    seed = load_topology(path, "seed")
    assert seed.profile == "seed" and seed.servers[0].sync.continuous is False


def test_dump_and_parse_round_trip() -> None:
    for profile in ("default", "seed"):
        topology = default_topology(profile)
        assert parse_topology(dump_topology(topology)) == topology


def test_errors_name_each_field_by_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "servers:\n  - {name: A_B, role: input, fsid: 1}\n  - {name: b, role: nope, fsid: 2}\n"
    )
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: servers[0].name: server name 'A_B' is not a DNS label")
    assert "; servers[1].role: " in message


def test_a_duplicate_fsid_is_one_line_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(
        "servers:\n  - {name: a, role: input, fsid: 1}\n  - {name: b, role: input, fsid: 1}\n"
    )
    with pytest.raises(TopologyError, match="fsid 1 is used by both 'a' and 'b'"):
        load_topology(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servers: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping with a 'servers' list"),
        ("servers: []\n", "a topology needs at least one server"),
    ],
)
def test_unusable_text(text: str, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        parse_topology(text, source="t.yaml")


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="does not exist"):
        load_topology(tmp_path / "nope.yaml")
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path)  # a directory


def test_an_unknown_profile_override() -> None:
    with pytest.raises(TopologyError, match="unknown profile 'prod'; choose one of: default, seed"):
        parse_topology("servers:\n  - {name: a, role: input, fsid: 1}\n", profile="prod")
