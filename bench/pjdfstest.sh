#!/usr/bin/env bash
# pjdfstest (the POSIX filesystem semantics suite) through the Linux kernel client against
# `filesim up`: prints the failing test files, the totals, and a JSON line.
#
#   bench/pjdfstest.sh PJD_TAR [VERS] [root|user] [DIR...]
#
# PJD_TAR: built by ../shared/tools/pjdfstest/build.sh from a checkout of pjd/pjdfstest (not
# vendored, not reachable from CI: this is why it is a benchmark and tests/nfs/
# test_kernel_posix.py the CI check). VERS: 3 (default), 4.1, 4.2. root: filesim runs as root
# (default); user: as an unprivileged user (uid 65534 via setpriv, nothing but its own files).
# DIR: pjdfstest test directories (chmod chown ...), default all. 10-25 min under TCG (the
# guest gives up after PJD_TIMEOUT seconds, default 3000).
set -euo pipefail
TAR=$(realpath "$1"); VERS=${2:-3}; AS=${3:-root}; shift $(( $# < 3 ? $# : 3 ))
HERE=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${FILESIM_TOOLS:-$HERE/../shared/tools}
KCLIENT=${FILESIM_KCLIENT:-$TOOLS/kernel-nfs-client/kclient}
WORK=$(mktemp -d /tmp/filesim-pjd.XXXXXX)
chmod 0755 "$WORK"
cat >"$WORK/topology.yaml" <<'EOF'
servers:
  - name: nas-pjd
    role: output
    fsid: 1
EOF
export PYTHONPATH=$HERE/src${PYTHONPATH:+:$PYTHONPATH}
PY=${FILESIM_PYTHON:-$(command -v python3)}  # user: a python the user may run (/root is 0700)
run=("$PY" -m filesim)
if [ "$AS" = user ]; then
  chown -R 65534:65534 "$WORK"
  run=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
       env HOME="$WORK" PYTHONPATH="$PYTHONPATH" "$PY" -m filesim)
fi
"${run[@]}" up --detach --root "$WORK/data" --config "$WORK/topology.yaml" --base-port 0 \
  --http-port 0 >/dev/null
stop() { "${run[@]}" down --root "$WORK/data" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap stop EXIT
PORT=$("${run[@]}" status --json --root "$WORK/data" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["servers"][0]["port"])')
start=$(date +%s)
bash "$KCLIENT" run --server 127.0.0.1 --port "$PORT" --export /data --vers "$VERS" \
  --mem 1024 --timeout "${PJD_TIMEOUT:-3000}" --file "$TAR" -- "$TOOLS/pjdfstest/guest.sh" "$@" \
  | tee "$WORK/out" || true  # shown as it comes: a full run takes minutes
out=$(cat "$WORK/out")
line=$(echo "$out" | grep '^pjdfstest:' | tail -1)
passed=$(echo "$line" | sed -n 's/^pjdfstest: \([0-9]*\) passed.*/\1/p')
failed=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
files=$(echo "$out" | { grep '^PJD ' || true; } | awk '{print $2}' | paste -sd, -)
printf '{"bench": "pjdfstest", "vers": "%s", "server_as": "%s", "passed": %s, "failed": %s, "seconds": %s, "failing_files": "%s"}\n' \
  "$VERS" "$AS" "${passed:-null}" "${failed:-null}" "$(( $(date +%s) - start ))" "$files"
