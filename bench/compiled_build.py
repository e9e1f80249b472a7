#!/usr/bin/env python3
"""An experiment, not a supported build: filesim's protocol modules compiled with mypyc.

    python3 bench/compiled_build.py [--out build/compiled] [--jobs 2] [--force]
    PYTHONPATH=build/compiled python3 bench/rpc_cost.py          # or nfs_dispatch.py
    python3 bench/before_after.py --before "$PWD/src" --after "$PWD/build/compiled" --only nfs

Copies src/filesim to OUT/filesim and compiles the modules in COMPILED there, each into a C
extension beside its .py (which Python then prefers); the source tree and the editable install
stay pure Python. Needs a C compiler, the Python headers and the mypy the project pins (mypyc
ships with it). A build whose inputs (every source file, this list, mypy's and Python's
versions) have not changed is kept.

Issue 15 measured it and did not adopt it (bench/README.md, "a compiled build"): the server's
CPU per call does not fall by more than the noise, and mypyc 2.4.1 miscompiles parts of the
code (a path-mode WRITE lands twice; a Vfs error inside an NFSv4 operation becomes a
TypeError), so 14 of the NFS tests fail against this build. Do not serve anything with it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules every NFS call goes through: RPC framing and messages, XDR, the NFSv3 and NFSv4
# procedures and codecs, attributes, handles and the Vfs stack the runtime composes. The
# figures in bench/README.md were measured without appendlog, fileids and fileidtable, which
# came later: FileIdVfs subclasses the compiled VfsLayer, so it must be compiled too.
COMPILED = [
    "oncrpc/const.py",
    "oncrpc/message.py",
    "oncrpc/programs.py",
    "oncrpc/record.py",
    "oncrpc/uaddr.py",
    "oncrpc/xdr.py",
    "nfs/access.py",
    "nfs/appendlog.py",
    "nfs/attrs.py",
    "nfs/callback.py",
    "nfs/caseexact.py",
    "nfs/const.py",
    "nfs/dispatch.py",
    "nfs/export.py",
    "nfs/faults.py",
    "nfs/fileids.py",
    "nfs/fileidtable.py",
    "nfs/generations.py",
    "nfs/handles.py",
    "nfs/inodesearch.py",
    "nfs/layer.py",
    "nfs/limits.py",
    "nfs/localfs.py",
    "nfs/locks.py",
    "nfs/mount.py",
    "nfs/notify.py",
    "nfs/offsets.py",
    "nfs/ownership.py",
    "nfs/pathcheck.py",
    "nfs/pathfs.py",
    "nfs/policy.py",
    "nfs/registry.py",
    "nfs/rpcbind.py",
    "nfs/statefile.py",
    "nfs/statx.py",
    "nfs/storage.py",
    "nfs/types.py",
    "nfs/vfs.py",
    "nfs/procedures/attributes.py",
    "nfs/procedures/common.py",
    "nfs/procedures/fsinfo.py",
    "nfs/procedures/io.py",
    "nfs/procedures/listing.py",
    "nfs/procedures/names.py",
    "nfs/v4/attrs.py",
    "nfs/v4/blocking.py",
    "nfs/v4/clients.py",
    "nfs/v4/compound.py",
    "nfs/v4/const.py",
    "nfs/v4/context.py",
    "nfs/v4/ops_attr.py",
    "nfs/v4/ops_client.py",
    "nfs/v4/ops_fh.py",
    "nfs/v4/ops_file.py",
    "nfs/v4/ops_io.py",
    "nfs/v4/ops_lock.py",
    "nfs/v4/ops_none.py",
    "nfs/v4/ops_open.py",
    "nfs/v4/ops_session.py",
    "nfs/v4/pseudo.py",
    "nfs/v4/recovery.py",
    "nfs/v4/service.py",
    "nfs/v4/wire.py",
]

# Left interpreted, and why (mypyc builds them, but the result is wrong):
#   nfs/services.py, nfs/v4/stateids.py  dataclasses whose fields are typed with classes imported
#                     only for the type checker (LockManager, HostRecord; Client): the compiled
#                     module segfaults on import (mypyc reads those names at class creation).
#   nfs/nlm/*         nlm/types.py: a dataclass with `__test__ = False` is taken for a field
#                     ("non-default argument follows default argument" on import); NLM is not
#                     on the path of an NFS call in any case.
#   nfs/connection.py, nfs/server.py  subclasses of asyncio's protocols: the event loop's code
#                     runs interpreted either way.


def inputs_key() -> str:
    """What a build depends on: every source file, the list above, mypy's and Python's versions."""
    import mypy.version

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src/filesim").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(f"{mypy.version.__version__} {sys.version} {sysconfig.get_platform()}".encode())
    return digest.hexdigest()


def mypy_settings() -> str:
    """The [tool.mypy] tables of pyproject.toml, alone."""
    text = (ROOT / "pyproject.toml").read_text()
    tables = re.split(r"(?m)^(?=\[)", text)
    return "".join(t for t in tables if t.startswith(("[tool.mypy]", "[[tool.mypy.")))


def build(out: Path, jobs: int) -> None:
    """A fresh copy of the source in `out`, compiled in place by setuptools' build_ext."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(ROOT / "src/filesim", out / "filesim", ignore=shutil.ignore_patterns("*.so"))
    paths = [f"filesim/{module}" for module in COMPILED]
    # mypyc type-checks with the project's mypy settings (strict, the pydantic plugin), kept
    # apart from pyproject.toml, whose [project] table setuptools would read as its own.
    (out / "mypyc.toml").write_text(mypy_settings())
    args = ["--config-file", "mypyc.toml", *paths]
    setup = (
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n"
        f"setup(name='filesim-compiled', ext_modules=mypycify({args!r}, multi_file=True))\n"
    )
    (out / "setup.py").write_text(setup)
    env = {**os.environ, "PYTHONPATH": str(out)}
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace", f"--parallel={jobs}"],
        cwd=out,
        env=env,
        check=True,
    )
    for leftover in ("build", "setup.py", "mypyc.toml"):
        target = out / leftover
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build/compiled")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--force", action="store_true", help="build even if nothing changed")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    key = inputs_key()
    stamp = out / "BUILD-KEY"
    if not args.force and stamp.is_file() and stamp.read_text() == key:
        print(f"compiled build in {out} is up to date")
        return 0
    try:
        build(out, args.jobs)
    except subprocess.CalledProcessError as exc:
        print(f"error: the mypyc build failed ({exc}); see the compiler output above")
        return 1
    stamp.write_text(key)
    print(f"compiled build in {out}: run with PYTHONPATH={out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
