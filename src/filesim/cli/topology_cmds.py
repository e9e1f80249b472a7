"""`filesim up`, `down`, `status` and `serve`: running a topology."""

from __future__ import annotations
