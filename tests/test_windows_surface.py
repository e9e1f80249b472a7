"""The NFS, sync and lifecycle tests again, under a Windows-shaped `os`/`signal` on Linux
(tests/support/winsurface: no directory fds, no O_NOFOLLOW, no uids, no SIGKILL, listings
without inodes, sharing violations, msvcrt locks, no loop signal handlers). filesim must pick
the portable backend and get through them. This is a stand-in: no real Windows runs here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.windows_surface, pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]

SUITES = {
    "nfs": ["tests/nfs/test_procedures.py", "tests/nfs/test_confinement.py",
            "tests/nfs/test_stale_handles.py", "tests/nfs/test_pathfs.py"],
    # the agent, the executor and its confinement on the path tree (sync/pathtree.py)
    "sync": ["tests/sync/test_agent.py", "tests/sync/test_execute.py",
             "tests/sync/test_confinement.py", "tests/sync/test_clutter.py",
             "tests/sync/test_lock.py", "tests/sync/test_plan.py", "tests/sync/test_sharing.py"],
    "lifecycle": ["tests/cli/test_lifecycle.py", "tests/cli/test_down.py",
                  "tests/runtime/test_liveness.py"],
    # the dashboard's file pages walk with the sync trees (the path tree here)
    "dashboard": ["tests/runtime/dashboard/test_files.py"],
}  # fmt: skip

NOT_ON_WINDOWS = {
    # owners and modes: Windows has no uids (owner synthesized as 0) and no chown
    "tests/nfs/test_procedures.py::test_access_follows_mode_bits_and_credentials[auto]",
    "tests/nfs/test_procedures.py::test_root_squash_maps_root_to_anonymous[auto]",
    "tests/nfs/test_procedures.py::test_no_root_squash_keeps_root[auto]",
    # no FIFOs or device nodes on Windows: MKNOD answers NOTSUPP (test_pathfs checks that)
    "tests/nfs/test_procedures.py::test_mknod_fifo_and_devices[auto]",
    # no mode bits on Windows beyond read-only: a node cannot keep a mode such as 0666
    "tests/nfs/test_procedures.py::test_new_nodes_keep_their_exact_mode[auto]",
    # the test reads os.statvfs for its expectation; the server uses shutil.disk_usage
    "tests/nfs/test_procedures.py::test_fsstat_fsinfo_pathconf[auto]",
    # Python 3.11 on Windows reports no birth time: a removal behind the server's back is
    # caught by generations only for removals the server saw
    "tests/nfs/test_stale_handles.py::test_a_handle_of_a_file_removed_behind_the_server_is_stale_after_reuse[auto]",
    # it asserts the Linux choice (fd); here auto picks path, which every NFS test above uses
    "tests/nfs/test_pathfs.py::test_auto_picks_fd_where_the_platform_has_directory_fds",
    # it runs the fd backend (macOS before 13 lacks mknodat), which Windows does not have
    "tests/nfs/test_pathfs.py::test_mknod_answers_notsupp_on_the_fd_backend_without_mknodat",
    # its tester writes through a directory fd (so that its own writes never follow the
    # client's symlink), which this surface removes; the test runs on the path tree on Linux
    "tests/sync/test_confinement.py::test_a_symlink_swapped_in_over_nfs_mid_sync_lets_nothing_out[path]",
    # SIGTERM is TerminateProcess on Windows: no clean exit by it (SIGINT = Ctrl-C is tested)
    "tests/cli/test_lifecycle.py::test_up_stops_cleanly_on_signals[SIGTERM]",
    # ... so a hung topology already ends at the signal, before `down` would have to kill it
    "tests/cli/test_down.py::test_a_hung_topology_is_killed_after_the_timeout",
    # no FIFOs on Windows (os.mkfifo does not exist), so none can hang a download
    "tests/runtime/dashboard/test_files.py::test_a_fifo_is_not_downloaded_and_does_not_hang",
}  # fmt: skip


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_suite_passes_on_the_windows_surface(suite: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FILESIM_WINDOWS_SURFACE": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "tests/support/winsurface"), str(REPO / "src"), str(REPO)]
        ),
    }
    deselect = [arg for t in sorted(NOT_ON_WINDOWS) for arg in ("--deselect", t)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not kernel",
         f"--basetemp={tmp_path / 'bt'}", *deselect, *SUITES[suite]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in summary[0] and "skipped" not in summary[0], summary
