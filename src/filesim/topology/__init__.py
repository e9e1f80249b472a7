"""The topology: which NAS servers exist, what they export and how they sync.

The names below are loaded on first use (PEP 562): the command line imports this package to
declare its options, and building the pydantic models of `model` and `faults` would cost every
`filesim` command a fifth of its start, `--help` included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from filesim.lazy import lazy_names

if TYPE_CHECKING:
    from filesim.topology.kinds import Direction, PortMode, ProcessMode, Role, StorageMode
    from filesim.topology.layout import Layout
    from filesim.topology.load import (
        TopologyError,
        default_topology,
        dump_topology,
        load_topology,
        parse_topology,
    )
    from filesim.topology.model import ExportOptions, Server, SyncPolicy, Topology
    from filesim.topology.profiles import PROFILES

_HOME = {
    "Direction": "kinds",
    "PortMode": "kinds",
    "ProcessMode": "kinds",
    "Role": "kinds",
    "StorageMode": "kinds",
    "Layout": "layout",
    "TopologyError": "load",
    "default_topology": "load",
    "dump_topology": "load",
    "load_topology": "load",
    "parse_topology": "load",
    "ExportOptions": "model",
    "Server": "model",
    "SyncPolicy": "model",
    "Topology": "model",
    "PROFILES": "profiles",
}


__getattr__ = lazy_names(__name__, _HOME)


__all__ = [
    "PROFILES",
    "Direction",
    "ExportOptions",
    "Layout",
    "PortMode",
    "ProcessMode",
    "Role",
    "Server",
    "StorageMode",
    "SyncPolicy",
    "Topology",
    "TopologyError",
    "default_topology",
    "dump_topology",
    "load_topology",
    "parse_topology",
]
