"""Loading a topology from YAML, or the built-in preset, with errors a user can act on."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from filesim.errors import FilesimError
from filesim.topology.model import Topology
from filesim.topology.profiles import PROFILES


class TopologyError(FilesimError):
    """A topology file that cannot be used; the message says where and why."""


def default_topology(profile: str = "default") -> Topology:
    """The built-in seven-server production topology, under `profile`."""
    text = resources.files("filesim.topology").joinpath("presets/default.yaml").read_text()
    return parse_topology(text, source="built-in default", profile=profile)


def load_topology(path: Path | None, profile: str | None = None) -> Topology:
    """The topology in `path` (YAML), or the built-in default when `path` is None.

    `profile`, when given, overrides the file's own `profile:`.
    """
    if path is None:
        return default_topology(profile or "default")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"topology file {path} does not exist") from None
    except OSError as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc.strerror}") from None
    return parse_topology(text, source=str(path), profile=profile)


def parse_topology(text: str, source: str = "<text>", profile: str | None = None) -> Topology:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TopologyError(f"{source}: expected a mapping with a 'servers' list at the top")
    if profile is not None:
        if profile not in PROFILES:
            raise TopologyError(
                f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}"
            )
        data["profile"] = profile
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(f"{source}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the field by its path (servers[2].fsid)."""
    problems = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{loc}: {message}" if loc else message)
    return "; ".join(problems)


def dump_topology(topology: Topology) -> str:
    """The topology as YAML, fully resolved (what `serve`/`sync` in a container read)."""
    data = topology.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)
