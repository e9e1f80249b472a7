"""The JSON schema and defaults generated from the model agree with the model itself."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft7Validator

from filesim.topology import (
    Direction,
    Role,
    StorageMode,
    Topology,
    default_topology,
)
from filesim.topology.schema import model_defaults, profile_defaults, server_schema


def validator() -> Draft7Validator:
    server, definitions = server_schema()
    Draft7Validator.check_schema({**server, "definitions": definitions})
    return Draft7Validator({**server, "definitions": definitions})


def test_every_builtin_server_is_valid_for_the_schema() -> None:
    check = validator()
    for profile in ("default", "seed"):
        for server in default_topology(profile).servers:
            check.validate(server.model_dump(mode="json", exclude_none=True))


def test_the_schema_has_the_models_fields_and_choices() -> None:
    server, definitions = server_schema()
    assert set(server["properties"]) == set(
        Topology.model_fields["servers"].annotation.__args__[0].model_fields
    )  # type: ignore[union-attr]
    assert server["required"] == ["name", "role", "fsid"]
    assert server["additionalProperties"] is False
    assert definitions["Role"]["enum"] == [r.value for r in Role]
    assert definitions["StorageMode"]["enum"] == [m.value for m in StorageMode]
    assert definitions["Direction"]["enum"] == [d.value for d in Direction]
    assert "null" not in repr(server)  # optional fields are left out, never null
    assert "title" not in server["properties"]["fsid"]


GOOD: dict[str, Any] = {"name": "nas-1", "role": "input", "fsid": 1}


@pytest.mark.parametrize(
    "change",
    [
        {"name": "NAS_1"},
        {"name": "a" * 64},
        {"fsid": 0},
        {"fsid": 2**32},
        {"role": "archive"},
        {"node_port": 8080},
        {"port": 0},
        {"fsidd": 1},
        {"export": {"path": "data"}},
        {"export": {"allowed_clients": ["ten networks"]}},
        {"export": {"anon_uid": -1}},
        {"sync": {"direction": "sideways"}},
        {"sync": {"rescan_interval_s": 0}},
        {"sync": {"settle_ms": -1}},
        {"faults": [{"kind": "meteor"}]},
    ],
)
def test_values_the_model_refuses_the_schema_refuses(change: dict[str, Any]) -> None:
    server = {**GOOD, **change}
    with pytest.raises(ValueError):
        Topology.model_validate({"servers": [server]})
    assert list(validator().iter_errors(server)), f"the schema accepts {server}"


def test_model_defaults_are_the_models() -> None:
    bare = Topology.model_validate({"servers": [GOOD]}).servers[0]
    defaults = model_defaults()
    assert defaults["storage"] == bare.storage.value
    assert defaults["export"] == bare.export.model_dump(mode="json")
    # The sync defaults below the profile's: fields no profile sets keep these.
    assert {k: v for k, v in defaults["sync"].items() if k in ("settle_ms", "watcher")} == {
        "settle_ms": bare.sync.settle_ms, "watcher": bare.sync.watcher,
    }  # fmt: skip


@pytest.mark.parametrize("profile", ["default", "seed"])
def test_model_then_profile_defaults_resolve_a_server_as_the_model_does(profile: str) -> None:
    for role in Role:
        server = Topology.model_validate(
            {"profile": profile, "servers": [{**GOOD, "role": role.value}]}
        ).servers[0]
        resolved = {**model_defaults()["sync"], **profile_defaults()[profile][role.value]}
        assert server.sync.model_dump(mode="json") == resolved
