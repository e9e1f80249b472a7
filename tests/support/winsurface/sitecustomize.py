"""A Windows-shaped `os`/`signal` on Linux, for CI: FILESIM_WINDOWS_SURFACE=1 with this
directory on PYTHONPATH installs it at interpreter start, before anything imports filesim.

What Windows lacks is removed (directory fds and the *at calls, O_NOFOLLOW/O_DIRECTORY,
pread/pwrite, fchmod/fchown, uids, statvfs, FIFOs and device numbers, SIGKILL and friends,
fcntl/pwd/grp, the loop's signal handlers), and what Windows does differently is done so:
a listing's entries carry no inode (DirEntry.inode() and DirEntry.stat().st_ino are 0), a
stat has no st_blocks/st_rdev, `os.kill(pid, 0)` sends Ctrl-C (SIGINT) instead of probing,
SIGTERM kills outright (TerminateProcess), and a file another program holds open (os.open)
can be neither replaced, renamed nor deleted (PermissionError, a sharing violation), and
neither can a file without the owner write bit (the read-only attribute). File
locks come from a stand-in `msvcrt.locking` (flock underneath: per handle, like Windows').
It is a stand-in, not Windows: paths, names, ACLs and the real APIs stay Linux's.
"""

from __future__ import annotations

import os


def _install() -> None:
    import asyncio.unix_events
    import fcntl
    import shutil
    import signal
    import stat
    import subprocess
    import sys
    import threading
    import types
    from typing import Any

    real: dict[str, Any] = {n: getattr(os, n) for n in dir(os) if not n.startswith("_")}
    for name in ("O_DIRECTORY", "O_NOFOLLOW", "O_PATH", "O_NOATIME", "O_CLOEXEC", "pread",
                 "pwrite", "preadv", "pwritev", "mknod", "mkfifo", "major", "minor", "makedev",
                 "statvfs", "fstatvfs", "getuid", "geteuid", "getgid", "getegid", "getgroups",
                 "fchown", "lchown", "chown", "fchmod", "lchmod", "sync", "posix_fallocate",
                 "posix_fadvise", "setsid", "killpg", "getpgid", "SEEK_DATA", "SEEK_HOLE",
                 "fdatasync", "sendfile", "copy_file_range"):  # fmt: skip
        if hasattr(os, name):
            delattr(os, name)
    for name in ("SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"):
        if hasattr(signal, name):
            delattr(signal, name)
    for name in ("fcntl", "pwd", "grp", "resource", "termios"):
        sys.modules[name] = None  # type: ignore[assignment]

    def unavailable(what: str) -> NotImplementedError:
        return NotImplementedError(f"{what} unavailable on this platform")

    held: dict[str, int] = {}  # real path -> open count (files "another program" holds)
    fds: dict[int, str] = {}
    lock = threading.Lock()

    def no_dir_fd(name: str, fn: Any) -> Any:
        def call(*args: Any, dir_fd: Any = None, **kw: Any) -> Any:
            if dir_fd is not None or kw.get("src_dir_fd") is not None:
                raise unavailable(f"{name}: dir_fd")
            if kw.get("dst_dir_fd") is not None:
                raise unavailable(f"{name}: dst_dir_fd")
            if kw.get("follow_symlinks") is False and name not in ("stat", "lstat"):
                raise unavailable(f"{name}: follow_symlinks")
            kw.pop("src_dir_fd", None), kw.pop("dst_dir_fd", None)
            return fn(*args, **kw)

        return call

    def windows_stat(st: os.stat_result) -> os.stat_result:
        fields = (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, 0, 0, st.st_size,
                  int(st.st_atime), int(st.st_mtime), int(st.st_ctime))  # fmt: skip
        extra = {"st_atime": st.st_atime, "st_mtime": st.st_mtime, "st_ctime": st.st_ctime,
                 "st_atime_ns": st.st_atime_ns, "st_mtime_ns": st.st_mtime_ns,
                 "st_ctime_ns": st.st_ctime_ns}  # fmt: skip
        return os.stat_result(fields, extra)

    def stat_fn(name: str) -> Any:
        inner = no_dir_fd(name, real[name])
        return lambda *a, **kw: windows_stat(inner(*a, **kw))

    def opened(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
        if dir_fd is not None:
            raise unavailable("open: dir_fd")
        fd: int = real["open"](path, flags, mode)
        key = os.path.realpath(path)
        with lock:
            forget(fd)  # its number was closed some way we did not see
            fds[fd] = key
            held[key] = held.get(key, 0) + 1
        return fd

    def forget(fd: int) -> None:
        key = fds.pop(fd, None)
        if key is not None:
            held[key] -= 1
            if not held[key]:
                del held[key]

    def closed(fd: int) -> None:
        real["close"](fd)
        with lock:
            forget(fd)

    def fdopen(fd: int, *a: Any, **kw: Any) -> Any:
        with lock:  # the file object closes it, unseen: no longer counted as held
            forget(fd)
        return real["fdopen"](fd, *a, **kw)

    def sharing(path: Any, what: str) -> None:
        if isinstance(path, int):
            return
        with lock:
            busy = os.path.realpath(path) in held
        if busy:
            raise PermissionError(13, f"{what}: the file is being used by another process",
                                  str(path))  # fmt: skip

    def read_only(path: Any, what: str) -> None:
        """Windows refuses to replace or delete a file with the read-only attribute (which
        os.chmod sets when the owner write bit goes)."""
        try:
            st = real["lstat"](path)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode) and not st.st_mode & stat.S_IWRITE:
            raise PermissionError(13, f"{what}: access is denied (read-only)", str(path))

    def guarded(name: str, *targets: int, replaced: int | None = None) -> Any:
        inner = no_dir_fd(name, real[name])

        def call(*args: Any, **kw: Any) -> Any:
            for i in targets:
                if i < len(args):
                    sharing(args[i], name)
            if replaced is not None and replaced < len(args):
                read_only(args[replaced], name)
            return inner(*args, **kw)

        return call

    def utime(path: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(path, int):
            raise unavailable("utime: fd")
        return no_dir_fd("utime", real["utime"])(path, *a, **kw)

    def chmod(path: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(path, int):
            raise unavailable("chmod: fd")
        return no_dir_fd("chmod", real["chmod"])(path, *a, **kw)

    class Entry:
        __slots__ = ("_e",)

        def __init__(self, e: os.DirEntry[Any]) -> None:
            self._e = e

        name = property(lambda self: self._e.name)
        path = property(lambda self: self._e.path)

        def inode(self) -> int:
            return 0

        def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
            st = windows_stat(self._e.stat(follow_symlinks=follow_symlinks))
            return os.stat_result((st.st_mode, 0, *tuple(st)[2:10]), {
                k: getattr(st, k) for k in ("st_atime", "st_mtime", "st_ctime", "st_atime_ns",
                                            "st_mtime_ns", "st_ctime_ns")})  # fmt: skip

        def is_dir(self, *, follow_symlinks: bool = True) -> bool:
            return self._e.is_dir(follow_symlinks=follow_symlinks)

        def is_file(self, *, follow_symlinks: bool = True) -> bool:
            return self._e.is_file(follow_symlinks=follow_symlinks)

        def is_symlink(self) -> bool:
            return self._e.is_symlink()

        def __fspath__(self) -> Any:
            return self._e.path

    class Listing:
        def __init__(self, it: Any) -> None:
            self._it = it

        def __iter__(self) -> Listing:
            return self

        def __next__(self) -> Entry:
            return Entry(next(self._it))

        def __enter__(self) -> Listing:
            return self

        def __exit__(self, *exc: object) -> None:
            self._it.close()

        def close(self) -> None:
            self._it.close()

    def scandir(path: Any = ".") -> Listing:
        if isinstance(path, int):
            raise TypeError("scandir: path should be string, bytes or os.PathLike, not int")
        return Listing(real["scandir"](path))

    def kill(pid: int, sig: int) -> None:
        if sig == 0:  # Windows: CTRL_C_EVENT, not a probe
            sig = signal.SIGINT
        elif sig == signal.SIGTERM:  # TerminateProcess
            sig = 9
        real["kill"](pid, sig)

    os.open = opened
    os.close = closed
    os.fdopen = fdopen
    os.stat, os.lstat = stat_fn("stat"), stat_fn("lstat")
    os.fstat = lambda fd: windows_stat(real["fstat"](fd))
    os.replace = guarded("replace", 0, 1, replaced=1)
    os.rename = guarded("rename", 0, 1, replaced=1)
    os.unlink = guarded("unlink", 0, replaced=0)
    os.remove = guarded("remove", 0, replaced=0)
    for name in ("mkdir", "rmdir", "readlink", "symlink", "link", "access"):
        setattr(os, name, no_dir_fd(name, real[name]))
    os.utime, os.chmod, os.scandir, os.kill = utime, chmod, scandir, kill
    subprocess.Popen.kill = subprocess.Popen.terminate  # type: ignore[method-assign]  # both TerminateProcess
    os.supports_dir_fd = set()
    shutil._use_fd_functions = False  # type: ignore[attr-defined]  # as on Windows: by path
    os.supports_fd = {os.stat, os.truncate}
    os.supports_follow_symlinks = {os.stat}
    shutil.disk_usage = lambda p: shutil._ntuple_diskusage(  # type: ignore[attr-defined]
        *(lambda s: (s.f_blocks * s.f_frsize, (s.f_blocks - s.f_bfree) * s.f_frsize,
                     s.f_bavail * s.f_frsize))(real["statvfs"](p)))  # fmt: skip

    def no_signal_handlers(self: Any, sig: int, callback: Any, *args: Any) -> None:
        raise NotImplementedError

    asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = no_signal_handlers  # type: ignore[method-assign]

    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_NBLCK, msvcrt.LK_UNLCK = 2, 0  # type: ignore[attr-defined]

    def locking(fd: int, mode: int, nbytes: int) -> None:
        if mode == 0:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    msvcrt.locking = locking  # type: ignore[attr-defined]
    sys.modules["msvcrt"] = msvcrt
    os.environ.setdefault("FILESIM_NO_UVLOOP", "1")


if os.environ.get("FILESIM_WINDOWS_SURFACE") == "1":
    _install()
