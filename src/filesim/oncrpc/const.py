"""ONC RPC (RFC 5531) constants: message types, reply and accept statuses, auth flavors, limits."""

from __future__ import annotations

from enum import IntEnum

RPC_VERSION = 2
CALL = 0
REPLY = 1

MAX_AUTH_BYTES = 400
"""The largest credential or verifier body (RFC 5531 section 8.2)."""
MAX_MACHINE_NAME = 255
MAX_AUX_GIDS = 16


class ReplyStat(IntEnum):
    MSG_ACCEPTED = 0
    MSG_DENIED = 1


class AcceptStat(IntEnum):
    SUCCESS = 0
    PROG_UNAVAIL = 1
    PROG_MISMATCH = 2
    PROC_UNAVAIL = 3
    GARBAGE_ARGS = 4
    SYSTEM_ERR = 5


class RejectStat(IntEnum):
    RPC_MISMATCH = 0
    AUTH_ERROR = 1


class AuthStat(IntEnum):
    AUTH_OK = 0
    AUTH_BADCRED = 1
    AUTH_REJECTEDCRED = 2
    AUTH_BADVERF = 3
    AUTH_REJECTEDVERF = 4
    AUTH_TOOWEAK = 5


class AuthFlavor(IntEnum):
    AUTH_NONE = 0
    AUTH_SYS = 1
