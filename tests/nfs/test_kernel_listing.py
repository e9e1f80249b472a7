"""A large directory as the Linux kernel client lists it, over NFSv3 and NFSv4.1 at once.

READDIRPLUS and v4 READDIR encode every entry in one pack (`encode_entryplus3`, a compiled
fattr4 encoder): the names (every padding), sizes, modes, types, owners and times the kernel
sees over several pages must be the host's. One guest run for both versions.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.support.kclient import checks, kclient_run
from tests.support.threaded import serving

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.integration]

ENTRIES = 2500  # several pages of READDIRPLUS (dircount 8 KiB) and of v4 READDIR

SCRIPT = r"""
set -u
mkdir -p /v4
mount.nfs "$KCLIENT_SERVER_IP:/data" /v4 -o "vers=4.1,proto=tcp,port=$KCLIENT_PORT,retry=0"
for mnt in /mnt /v4; do
    tag=$(basename "$mnt")
    echo "CHECK count_$tag $(ls -1a "$mnt/big" | wc -l)"
    ( cd "$mnt/big" && ls -1 | md5sum | cut -d' ' -f1 ) | sed "s/^/CHECK names_$tag /"
    ( cd "$mnt/big" && ls -ln > /dev/null && stat -c '%n %s %f %h %u %g %Y' * \
      | md5sum | cut -d' ' -f1 ) | sed "s/^/CHECK attrs_$tag /"
done
"""


def _populate(big: Path) -> tuple[str, str]:
    """ENTRIES nodes of every kind, name lengths 4-40 (each XDR padding); the md5 of their
    sorted names and of `stat -c '%n %s %f %h %u %g %Y'` lines for them, as the guest prints."""
    big.mkdir()
    for i in range(ENTRIES):
        name = f"{i:04d}" + "x" * (i % 37)
        path = big / name
        if i % 50 == 7:
            path.mkdir(mode=0o750)
        elif i % 50 == 9:
            path.symlink_to(f"target-{i}")
        else:
            path.write_bytes(b"z" * (i % 300))
            path.chmod(0o600 | (i % 8) << 3 | 0o4000 * (i % 97 == 0))
            os.chown(path, 1000 + i % 3, 2000 + i % 5, follow_symlinks=False)
    names = sorted(p.name for p in big.iterdir())
    lines = []
    for name in names:
        st = os.lstat(big / name)
        lines.append(f"{name} {st.st_size} {st.st_mode:x} {st.st_nlink} {st.st_uid} "
                     f"{st.st_gid} {int(st.st_mtime)}\n")  # fmt: skip
    digest = hashlib.md5("".join(f"{n}\n" for n in names).encode()).hexdigest()
    return digest, hashlib.md5("".join(lines).encode()).hexdigest()


def test_kernel_lists_a_large_directory_as_the_host_has_it(tmp_path: Path) -> None:
    with serving(tmp_path / "export") as server:
        names, attrs = _populate(tmp_path / "export" / "big")
        proc = kclient_run(server.port, SCRIPT, opts="nolock")
    result = checks(proc.stdout)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    for tag in ("mnt", "v4"):
        assert result.get(f"count_{tag}") == str(ENTRIES + 2), (tag, proc.stdout)
        assert result.get(f"names_{tag}") == names, (tag, proc.stdout)
        assert result.get(f"attrs_{tag}") == attrs, (tag, proc.stdout)
