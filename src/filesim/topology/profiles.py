"""Sync defaults by role, per profile: data, not code paths.

`default` is the better behaviour: inputs and outputs sync both ways continuously, the backup
from folder to export. `seed` reproduces the original system exactly: input and backup copied
from folder to export once at start (input mirrors deletions, backup does not); output copied
from export to folder continuously, never deleting what a tester dropped.
"""

from __future__ import annotations

from typing import Any, Literal

Profile = Literal["default", "seed"]

ROLE_SYNC_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {
        "input": {"direction": "both", "continuous": True, "initial": True, "mirror_deletes": True},
        "output": {
            "direction": "both",
            "continuous": True,
            "initial": True,
            "mirror_deletes": True,
        },
        "backup": {
            "direction": "folder-to-export",
            "continuous": True,
            "initial": True,
            "mirror_deletes": True,
        },
    },
    "seed": {
        "input": {
            "direction": "folder-to-export",
            "continuous": False,
            "initial": True,
            "mirror_deletes": True,
        },
        "output": {
            "direction": "export-to-folder",
            "continuous": True,
            "initial": True,
            "mirror_deletes": False,
        },
        "backup": {
            "direction": "folder-to-export",
            "continuous": False,
            "initial": True,
            "mirror_deletes": False,
        },
    },
}

PROFILES: tuple[str, ...] = tuple(ROLE_SYNC_DEFAULTS)


def role_sync_defaults(profile: object, role: str) -> dict[str, Any]:
    """The sync fields a server of `role` gets unless its topology entry sets them."""
    if profile not in ROLE_SYNC_DEFAULTS:
        raise ValueError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    return dict(ROLE_SYNC_DEFAULTS[str(profile)].get(role, {}))
