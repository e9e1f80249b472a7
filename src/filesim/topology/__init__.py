"""The topology: which NAS servers exist, what they export and how they sync."""

from filesim.topology.layout import Layout
from filesim.topology.load import (
    TopologyError,
    default_topology,
    dump_topology,
    load_topology,
    parse_topology,
)
from filesim.topology.model import (
    Direction,
    ExportOptions,
    PortMode,
    ProcessMode,
    Role,
    Server,
    StorageMode,
    SyncPolicy,
    Topology,
)
from filesim.topology.profiles import PROFILES

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
