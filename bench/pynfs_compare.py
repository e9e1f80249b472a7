#!/usr/bin/env python3
"""pynfs, the NFSv4 server conformance suite, against filesim and NFS-Ganesha in the same run.

Fetches nothing: give it a built pynfs tree (`git clone` of kofemann/pynfs, then
`pip install ply` and `python setup.py build` in it). Starts Ganesha (NFSv4 only, through
../shared/bench/start-ganesha.sh, as root) and `filesim serve` on free loopback ports, runs the
4.0 (`nfs4.0/testserver.py --maketree all`) and 4.1/4.2 (`nfs4.1/testserver.py --maketree
--minorversion=N all`) server tests against both at once, prints a pass table per version,
the tests Ganesha passes and filesim does not (with pynfs's reason), and one line
`PYNFS_JSON {...}`. The 4.0 suite takes ~21 minutes against Ganesha (lease-expiry sleeps).

    python3 bench/pynfs_compare.py --pynfs /work/ext/pynfs --versions 4.1,4.2
    python3 bench/pynfs_compare.py --pynfs /work/ext/pynfs --versions 4.0 --tests LOCK1 OPEN2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GANESHA = REPO.parent / "shared" / "bench" / "start-ganesha.sh"
RESULT = re.compile(r"^(\S+)\s+(\S+)\s+: (PASS|FAILURE|WARNING|OMIT)\s*$")
TOPOLOGY = """\
servers:
  - name: pynfs
    role: input
    fsid: 7
    storage: direct
    export: {{path: /data, nfs4_lease_s: {lease}, nfs4_grace_s: {lease}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextlib.contextmanager
def ganesha(script: Path, work: Path) -> Iterator[str]:
    port = free_port()
    out = subprocess.run(
        ["bash", str(script), "--protocols", "4", "--pseudo", "/export", "--nfs-port",
         str(port), "--state-dir", str(work / "ganesha"), "--max-lifetime", "5400"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"Ganesha did not start: {out.stderr.strip()}")
    pid = out.stdout.strip()
    try:
        yield f"127.0.0.1:{port}/export"
    finally:
        subprocess.run(["bash", str(script), "--stop", pid], capture_output=True, check=False)


@contextlib.contextmanager
def filesim(work: Path, lease: int) -> Iterator[str]:
    port = free_port()
    topo = work / "topology.yaml"
    topo.write_text(TOPOLOGY.format(lease=lease))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (work / "filesim.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "filesim", "serve", "pynfs", "--config", str(topo), "--root",
         str(work / "root"), "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_port(port, 30)
        yield f"127.0.0.1:{port}/data"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_suite(pynfs: Path, version: str, target: str, tests: list[str], out: Path) -> dict:
    """Run one pynfs suite; {test code: {name, result, reason}} from its output."""
    minor = version.split(".")[1]
    if minor == "0":
        cmd = [sys.executable, "testserver.py", target, "--maketree"]
        cwd = pynfs / "nfs4.0"
    else:
        cmd = [sys.executable, "testserver.py", target, "--maketree", f"--minorversion={minor}"]
        cwd = pynfs / "nfs4.1"
    cmd += [f"--json={out}.json", *(tests or ["all"])]
    with open(f"{out}.log", "w") as log:
        subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=3600,
                       check=False)  # fmt: skip
    results: dict[str, dict[str, str]] = {}
    for line in Path(f"{out}.log").read_text(errors="replace").splitlines():
        m = RESULT.match(line)
        if m:
            results[m.group(1)] = {"name": m.group(2), "result": m.group(3), "reason": ""}
    with contextlib.suppress(OSError, ValueError):
        for case in json.loads(Path(f"{out}.json").read_text())["testcase"]:
            failure = case.get("failure")
            if failure and case["code"] in results:
                results[case["code"]]["reason"] = str(failure.get("message", ""))[:200]
    return results


def counts(results: dict[str, dict[str, str]]) -> dict[str, int]:
    c = {"PASS": 0, "FAILURE": 0, "WARNING": 0}
    for r in results.values():
        c[r["result"]] = c.get(r["result"], 0) + 1
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pynfs", type=Path, required=True, help="a built pynfs tree")
    ap.add_argument("--versions", default="4.0,4.1,4.2")
    ap.add_argument("--tests", nargs="*", default=[], help="test codes or flags (default all)")
    ap.add_argument("--rundeps", action="store_true", help="pynfs --rundeps (with --tests)")
    ap.add_argument("--ganesha-script", type=Path, default=GANESHA)
    ap.add_argument("--no-ganesha", action="store_true", help="run against filesim only")
    ap.add_argument("--lease", type=int, default=15, help="filesim's NFSv4 lease (s)")
    ap.add_argument("--keep", type=Path, help="keep logs here (default: a temporary dir)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="pynfs-compare."))
    work.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {}
    for version in args.versions.split(","):
        vdir = work / version
        vdir.mkdir(exist_ok=True)
        with contextlib.ExitStack() as stack:
            targets = {"filesim": stack.enter_context(filesim(vdir, args.lease))}
            if not args.no_ganesha:
                targets["ganesha"] = stack.enter_context(ganesha(args.ganesha_script, vdir))
            with ThreadPoolExecutor(len(targets)) as pool:
                futures = {
                    name: pool.submit(
                        run_suite,
                        args.pynfs,
                        version,
                        target,
                        ([*args.tests, "--rundeps"] if args.rundeps else args.tests),
                        vdir / name,
                    )
                    for name, target in targets.items()
                }
                results = {name: f.result() for name, f in futures.items()}
        summary[version] = report(version, results)
    print("PYNFS_JSON " + json.dumps({"logs": str(work), "versions": summary}))
    return 0


def report(version: str, results: dict[str, dict[str, dict[str, str]]]) -> dict:
    print(f"\n== NFSv{version} ==")
    for name, res in results.items():
        c = counts(res)
        print(f"{name:8} {c['PASS']:4} pass {c['FAILURE']:4} fail {c['WARNING']:3} warn "
              f"of {len(res)}")  # fmt: skip
    out: dict = {name: counts(res) for name, res in results.items()}
    fs, ga = results["filesim"], results.get("ganesha")
    if ga is not None:
        behind = sorted(
            code
            for code, r in ga.items()
            if r["result"] == "PASS" and fs.get(code, {}).get("result") != "PASS"
        )
        ahead = sorted(
            code
            for code, r in fs.items()
            if r["result"] == "PASS" and ga.get(code, {}).get("result") != "PASS"
        )
        print(f"Ganesha passes, filesim does not ({len(behind)}):")
        for code in behind:
            r = fs.get(code, {"result": "MISSING", "reason": "", "name": ga[code]["name"]})
            print(f"  {code:10} {r['name']:45} {r['result']:8} {r['reason'][:90]}")
        print(f"filesim passes, Ganesha does not ({len(ahead)}): {' '.join(ahead)}")
        out["behind"], out["ahead"] = behind, ahead
    out["tests"] = {code: {n: res.get(code, {}).get("result", "-") for n, res in results.items()}
                    for code in sorted(set().union(*results.values()))}  # fmt: skip
    return out


if __name__ == "__main__":
    sys.exit(main())
