"""Names of a package loaded on first use (PEP 562).

The command line imports `filesim.topology` to declare its options; building the topology's
pydantic models then would cost every `filesim` command, `--help` included, a fifth of its
start. Such a package lists where each name lives, imports those modules under TYPE_CHECKING
for the type checker, and sets `__getattr__ = lazy_names(...)`. A lazy name must not also be
the name of one of the package's modules: importing that module would set the name to it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: a name of `homes` is imported from
    `package.<its home>` when first asked for, then kept in the package like any other."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
