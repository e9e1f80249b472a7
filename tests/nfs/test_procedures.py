"""Each NFSv3 procedure through the dispatcher, on a real directory, with no socket."""

from __future__ import annotations

import gc
import os
import stat
import time
from pathlib import Path

import pytest

from filesim.nfs.const import (
    ACCESS_DELETE,
    ACCESS_EXECUTE,
    ACCESS_LOOKUP,
    ACCESS_MODIFY,
    ACCESS_READ,
    Ftype,
    StableHow,
)
from filesim.nfs.types import (
    decode_dirlistplus3,
    decode_fattr3,
    decode_post_op_attr,
    decode_wcc_data,
)
from filesim.oncrpc.programs import NfsProc, NfsStat
from filesim.oncrpc.xdr import Packer, Unpacker
from tests.support.backend import expected_fileid
from tests.support.rig import ROOT, Rig, make_rig, sattr, user

ALL = ACCESS_READ | ACCESS_LOOKUP | ACCESS_MODIFY | ACCESS_DELETE | ACCESS_EXECUTE | 0x08


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path / "export", fsid=7)


@pytest.fixture
def root(rig: Rig) -> bytes:
    return rig.mount("/data")


def test_null_answers_with_empty_body(rig: Rig) -> None:
    reply = rig.nfs(NfsProc.NULL)
    assert reply.accept == 0 and reply.u.remaining() == 0


def test_getattr_reports_real_attributes(rig: Rig, root: bytes) -> None:
    (rig.root / "f.txt").write_bytes(b"12345")
    os.chmod(rig.root / "f.txt", 0o640)
    attrs = rig.getattr(rig.lookup(root, "f.txt"))
    st = os.lstat(rig.root / "f.txt")
    assert attrs.type is Ftype.REG
    assert attrs.mode == 0o640
    assert (attrs.size, attrs.nlink, attrs.uid, attrs.gid) == (5, 1, st.st_uid, st.st_gid)
    assert attrs.fsid == 7
    assert attrs.fileid == expected_fileid(rig.export.vfs, "f.txt", st.st_ino)
    blocks = st.st_blocks if st.st_blocks is not None else -(-st.st_size // 512)  # Windows
    assert attrs.used == blocks * 512
    assert abs(attrs.mtime - st.st_mtime) < 1e-6 and abs(attrs.ctime - st.st_ctime) < 1e-6
    assert rig.getattr(root).type is Ftype.DIR


def test_write_read_commit_roundtrip_with_stable_verifier(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "data.bin")
    payload = os.urandom(300_000)
    u = rig.write(fh, 0, payload)
    after = decode_wcc_data(u).after
    count, committed, verifier = u.uint32(), u.uint32(), bytes(u.fixed_opaque(8))
    assert after is not None and after.size == len(payload)
    assert (count, committed) == (len(payload), StableHow.UNSTABLE)
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(0)
    cu = rig.ok(NfsProc.COMMIT, p)
    decode_wcc_data(cu)
    assert bytes(cu.fixed_opaque(8)) == verifier
    assert (rig.root / "data.bin").read_bytes() == payload
    data, eof = rig.read(fh, 0, 1 << 20)
    assert data == payload and eof
    data, eof = rig.read(fh, 100, 10)
    assert data == payload[100:110] and not eof
    assert ("commit", "data.bin", None) in rig.changes


def test_sync_export_answers_file_sync(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "e", sync=True)
    fh = rig.create(rig.mount(), "f")
    u = rig.write(fh, 0, b"abc")
    decode_wcc_data(u)
    assert u.uint32() == 3 and u.uint32() == StableHow.FILE_SYNC


def test_lookup_errors_and_dot_entries(rig: Rig, root: bytes) -> None:
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(root, "missing")) == NfsStat.NOENT
    (rig.root / "f").write_text("x")
    fh = rig.lookup(root, "f")
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(fh, "x")) == NfsStat.NOTDIR
    # ".." of the export root is the root itself: no way up and out
    assert rig.lookup(root, "..") == root
    assert rig.lookup(root, ".") == root
    (rig.root / "sub").mkdir()
    sub = rig.lookup(root, "sub")
    assert rig.lookup(sub, "..") == root


def test_setattr_mode_size_times_and_guard(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "f")
    rig.write(fh, 0, b"0123456789")
    p = rig.fh(fh)
    sattr(p, mode=0o600, size=4, mtime=(1_000_000_000, 5))
    p.bool(False)
    rig.ok(NfsProc.SETATTR, p)
    st = os.lstat(rig.root / "f")
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 4
    assert st.st_mtime_ns == 1_000_000_000 * 10**9 + 5
    # a guard with a stale ctime is refused and changes nothing
    p = rig.fh(fh)
    sattr(p, mode=0o644)
    p.bool(True)
    p.uint32(1)
    p.uint32(2)
    assert rig.fails(NfsProc.SETATTR, p) == NfsStat.NOT_SYNC
    assert stat.S_IMODE(os.lstat(rig.root / "f").st_mode) == 0o600


def test_access_follows_mode_bits_and_credentials(rig: Rig, root: bytes) -> None:
    (rig.root / "mine").write_text("x")
    os.chown(rig.root / "mine", 1000, 1000)
    os.chmod(rig.root / "mine", 0o640)
    fh = rig.lookup(root, "mine")

    def access(cred) -> int:  # type: ignore[no-untyped-def]
        p = rig.fh(fh)
        p.uint32(ALL)
        u = rig.ok(NfsProc.ACCESS, p, cred)
        decode_post_op_attr(u)
        return u.uint32()

    assert access(user(1000)) == ACCESS_READ | ACCESS_MODIFY | 0x08
    assert access(user(2000, 1000)) == ACCESS_READ
    assert access(user(2000, 3000, (1000,))) == ACCESS_READ
    assert access(user(2000, 3000)) == 0
    assert access(user(0)) == ACCESS_READ | ACCESS_MODIFY | 0x08  # root, but no x bit set


def test_permissions_are_enforced_for_other_users(rig: Rig, root: bytes) -> None:
    (rig.root / "secret").write_text("x")
    os.chmod(rig.root / "secret", 0o600)
    fh = rig.lookup(root, "secret")
    p = rig.fh(fh)
    p.uint64(0)
    p.uint32(10)
    assert rig.fails(NfsProc.READ, p, user(1000)) == NfsStat.ACCES
    os.chmod(rig.root, 0o755)
    p = rig.dirop(root, "new")
    p.uint32(0)
    sattr(p)
    assert rig.fails(NfsProc.CREATE, p, user(1000)) == NfsStat.ACCES


def test_create_modes(rig: Rig, root: bytes) -> None:
    rig.create(root, "f")
    p = rig.dirop(root, "f")
    p.uint32(1)  # GUARDED
    sattr(p)
    assert rig.fails(NfsProc.CREATE, p) == NfsStat.EXIST
    # EXCLUSIVE is idempotent for the same verifier and refuses another one
    for verifier, expect_ok in ((b"verifier", True), (b"verifier", True), (b"another!", False)):
        p = rig.dirop(root, "excl")
        p.uint32(2)
        p.fixed_opaque(verifier)
        if expect_ok:
            rig.ok(NfsProc.CREATE, p)
        else:
            assert rig.fails(NfsProc.CREATE, p) == NfsStat.EXIST
    assert (rig.root / "excl").is_file()


def test_unchecked_create_with_size_truncates(rig: Rig, root: bytes) -> None:
    (rig.root / "f").write_bytes(b"old contents")
    p = rig.dirop(root, "f")
    p.uint32(0)
    sattr(p, size=0)
    rig.ok(NfsProc.CREATE, p)
    assert (rig.root / "f").read_bytes() == b""


def test_create_over_an_existing_name_changes_nothing(rig: Rig, root: bytes) -> None:
    """CREATE tries the name first and looks only when it is taken: an UNCHECKED create of an
    existing file keeps it, and neither it nor a refused one is reported as a change."""
    (rig.root / "f").write_bytes(b"kept")
    rig.mkdir(root, "d")
    rig.changes.clear()
    p = rig.dirop(root, "f")
    p.uint32(0)  # UNCHECKED, no size
    sattr(p)
    rig.ok(NfsProc.CREATE, p)
    p = rig.dirop(root, "d")
    p.uint32(0)
    sattr(p)
    assert rig.fails(NfsProc.CREATE, p) == NfsStat.ISDIR
    assert (rig.root / "f").read_bytes() == b"kept"
    assert rig.changes == []


def test_mkdir_rmdir_remove_and_notempty(rig: Rig, root: bytes) -> None:
    d = rig.mkdir(root, "d")
    rig.create(d, "f")
    assert rig.fails(NfsProc.RMDIR, rig.dirop(root, "d")) == NfsStat.NOTEMPTY
    assert rig.fails(NfsProc.MKDIR, _mkdir_args(rig, root, "d")) == NfsStat.EXIST
    assert rig.fails(NfsProc.REMOVE, rig.dirop(root, "d")) == NfsStat.ISDIR
    rig.ok(NfsProc.REMOVE, rig.dirop(d, "f"))
    rig.ok(NfsProc.RMDIR, rig.dirop(root, "d"))
    assert not (rig.root / "d").exists()
    assert [c[0] for c in rig.changes] == ["mkdir", "create", "remove", "rmdir"]


def _mkdir_args(rig: Rig, dir_fh: bytes, name: str) -> Packer:
    p = rig.dirop(dir_fh, name)
    sattr(p)
    return p


def test_symlink_readlink_and_no_following(rig: Rig, root: bytes) -> None:
    p = rig.dirop(root, "escape")
    sattr(p)
    p.string("/etc")
    u = rig.ok(NfsProc.SYMLINK, p)
    assert u.bool()
    link_fh = bytes(u.opaque())
    assert os.readlink(rig.root / "escape") == "/etc"
    ru = rig.ok(NfsProc.READLINK, rig.fh(link_fh))
    decode_post_op_attr(ru)
    assert ru.string() == "/etc"
    # the link is a link: looking a name up "inside" it must not reach /etc
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(link_fh, "passwd")) == NfsStat.NOTDIR
    p = rig.fh(link_fh)
    p.uint64(0)
    p.uint32(100)
    assert rig.fails(NfsProc.READ, p) == NfsStat.INVAL


def test_mknod_fifo_and_devices(rig: Rig, root: bytes) -> None:
    p = rig.dirop(root, "pipe")
    p.uint32(Ftype.FIFO)
    sattr(p, mode=0o600)
    rig.ok(NfsProc.MKNOD, p)
    assert stat.S_ISFIFO(os.lstat(rig.root / "pipe").st_mode)
    os.chmod(rig.root, 0o777)  # a user who may create here still may not create devices
    for ftype, name, cred in [(Ftype.CHR, "tty", ROOT), (Ftype.BLK, "disk", ROOT),
                              (Ftype.CHR, "denied", user(1000))]:  # fmt: skip
        p = rig.dirop(root, name)
        p.uint32(ftype)
        sattr(p, mode=0o640)
        p.uint32(7)
        p.uint32(9)
        if cred is not ROOT:  # XSH mknod: EPERM, devices need privileges
            assert rig.fails(NfsProc.MKNOD, p, cred) == NfsStat.PERM
            assert not (rig.root / name).exists()
            continue
        fattr = decode_post_op_attr(_after_fh(rig.ok(NfsProc.MKNOD, p, cred)))
        assert fattr is not None and (fattr.type, fattr.rdev, fattr.mode) == (ftype, (7, 9), 0o640)


def _after_fh(u: Unpacker) -> Unpacker:
    if u.bool():
        u.opaque()
    return u


def test_rename_across_directories_and_link(rig: Rig, root: bytes) -> None:
    a, b = rig.mkdir(root, "a"), rig.mkdir(root, "b")
    fh = rig.create(a, "f")
    rig.write(fh, 0, b"content")
    p = rig.dirop(a, "f")
    p.opaque(b)
    p.string("g")
    rig.ok(NfsProc.RENAME, p)
    assert (rig.root / "b" / "g").read_bytes() == b"content"
    assert rig.read(fh, 0, 100)[0] == b"content"  # the old handle follows the file
    p = rig.fh(fh)
    p.opaque(root)
    p.string("hard")
    rig.ok(NfsProc.LINK, p)
    assert os.lstat(rig.root / "hard").st_nlink == 2
    assert ("rename", "a/f", "b/g") in rig.changes


def test_rename_of_a_directory_keeps_handles_below_it(rig: Rig, root: bytes) -> None:
    d = rig.mkdir(root, "d")
    fh = rig.create(d, "inner")
    p = rig.dirop(root, "d")
    p.opaque(root)
    p.string("e")
    rig.ok(NfsProc.RENAME, p)
    assert rig.getattr(fh).type is Ftype.REG


@pytest.mark.slow
def test_readdirplus_pages_through_10000_entries(rig: Rig, root: bytes) -> None:
    big = rig.root / "big"
    big.mkdir()
    for i in range(10_000):
        (big / f"file-{i:05d}").touch()
    dir_fh = rig.lookup(root, "big")
    names: list[str] = []
    cookie, verifier, eof, pages = 0, b"\0" * 8, False, 0
    while not eof:
        p = rig.fh(dir_fh)
        p.uint64(cookie)
        p.fixed_opaque(verifier)
        p.uint32(8192)
        p.uint32(32768)
        u = rig.ok(NfsProc.READDIRPLUS, p)
        decode_post_op_attr(u)
        verifier = bytes(u.fixed_opaque(8))
        entries, eof = decode_dirlistplus3(u)
        assert entries or eof
        for e in entries:
            assert e.fh is not None and e.attrs is not None
        names += [e.name for e in entries]
        cookie = entries[-1].cookie if entries else cookie
        pages += 1
    assert pages > 10
    assert sorted(n for n in names if n not in (".", "..")) == [
        f"file-{i:05d}" for i in range(10_000)
    ]
    assert len(names) == len(set(names)) == 10_002


def test_readdir_pages_and_survives_changes_between_pages(rig: Rig, root: bytes) -> None:
    for i in range(500):
        (rig.root / f"n{i:03d}").touch()
    names: list[str] = []
    cookie, verifier, eof = 0, b"\0" * 8, False
    while not eof:
        p = rig.fh(root)
        p.uint64(cookie)
        p.fixed_opaque(verifier)
        p.uint32(1024)
        u = rig.ok(NfsProc.READDIR, p)
        decode_post_op_attr(u)
        verifier = bytes(u.fixed_opaque(8))
        while u.bool():
            u.uint64()
            names.append(u.string())
            cookie = u.uint64()
        eof = u.bool()
        (rig.root / f"late-{len(names)}").touch()  # changes mid-listing must not break paging
    listed = [n for n in names if not n.startswith("late-") and n not in (".", "..")]
    assert listed == [f"n{i:03d}" for i in range(500)]


def test_readdir_too_small_buffer(rig: Rig, root: bytes) -> None:
    p = rig.fh(root)
    p.uint64(0)
    p.fixed_opaque(b"\0" * 8)
    p.uint32(10)
    assert rig.fails(NfsProc.READDIR, p) == NfsStat.TOOSMALL


def test_fsstat_fsinfo_pathconf(rig: Rig, root: bytes) -> None:
    u = rig.ok(NfsProc.FSSTAT, rig.fh(root))
    decode_post_op_attr(u)
    total, free, avail = u.uint64(), u.uint64(), u.uint64()
    sv = os.statvfs(rig.root)
    assert total == sv.f_blocks * sv.f_frsize and 0 < avail <= free <= total
    u = rig.ok(NfsProc.FSINFO, rig.fh(root))
    decode_post_op_attr(u)
    rtmax, _rtpref, _rtmult, wtmax = u.uint32(), u.uint32(), u.uint32(), u.uint32()
    assert rtmax >= 1 << 20 and wtmax >= 1 << 20
    u = rig.ok(NfsProc.PATHCONF, rig.fh(root))
    decode_post_op_attr(u)
    assert (u.uint32(), u.uint32()) == (32000, 255)


def test_hidden_temp_files_are_invisible(rig: Rig, root: bytes) -> None:
    (rig.root / ".filesim-tmp-abc").write_text("partial")
    (rig.root / "visible").write_text("x")
    assert rig.fails(NfsProc.LOOKUP, rig.dirop(root, ".filesim-tmp-abc")) == NfsStat.NOENT
    names = {e.name for e in rig.readdirplus(root)[0]}
    assert names == {".", "..", "visible"}


MUTATIONS = [
    NfsProc.SETATTR, NfsProc.WRITE, NfsProc.CREATE, NfsProc.MKDIR, NfsProc.SYMLINK,
    NfsProc.MKNOD, NfsProc.REMOVE, NfsProc.RMDIR, NfsProc.RENAME, NfsProc.LINK,
]  # fmt: skip


@pytest.mark.parametrize("proc", MUTATIONS, ids=lambda p: p.name)
def test_readonly_export_refuses_every_mutation(tmp_path: Path, proc: NfsProc) -> None:
    rig = make_rig(tmp_path / "ro", readonly=True)
    (rig.root / "f").write_text("keep")
    root = rig.mount()
    fh = rig.lookup(root, "f")
    args = _mutation_args(rig, proc, root, fh)
    assert rig.fails(proc, args) == NfsStat.ROFS
    assert sorted(p.name for p in rig.root.iterdir()) == ["f"]
    assert (rig.root / "f").read_text() == "keep"


def _mutation_args(rig: Rig, proc: NfsProc, root: bytes, fh: bytes) -> Packer:
    if proc == NfsProc.SETATTR:
        p = rig.fh(fh)
        sattr(p, size=0)
        p.bool(False)
    elif proc == NfsProc.WRITE:
        p = rig.fh(fh)
        p.uint64(0)
        p.uint32(1)
        p.uint32(2)
        p.opaque(b"x")
    elif proc in (NfsProc.REMOVE, NfsProc.RMDIR):
        p = rig.dirop(root, "f")
    elif proc == NfsProc.RENAME:
        p = rig.dirop(root, "f")
        p.opaque(root)
        p.string("g")
    elif proc == NfsProc.LINK:
        p = rig.fh(fh)
        p.opaque(root)
        p.string("g")
    else:
        p = rig.dirop(root, "new")
        if proc == NfsProc.CREATE:
            p.uint32(0)
        if proc == NfsProc.MKNOD:
            p.uint32(Ftype.FIFO)
        sattr(p)
        if proc == NfsProc.SYMLINK:
            p.string("target")
    return p


def test_readonly_access_withholds_modify(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "ro", readonly=True)
    root = rig.mount()
    p = rig.fh(root)
    p.uint32(ALL)
    u = rig.ok(NfsProc.ACCESS, p)
    decode_post_op_attr(u)
    assert u.uint32() & (ACCESS_MODIFY | ACCESS_DELETE) == 0


def test_root_squash_maps_root_to_anonymous(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "sq", root_squash=True, anon_uid=65534, anon_gid=65534)
    os.chmod(rig.root, 0o777)
    root = rig.mount()
    fh = rig.create(root, "by-root")
    attrs = rig.getattr(fh)
    assert (attrs.uid, attrs.gid) == (65534, 65534)


def test_no_root_squash_keeps_root(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "r", cred=user(0))
    assert rig.getattr(fh).uid == 0
    os.chmod(rig.root, 0o777)
    fh = rig.create(root, "u", cred=user(1234, 4321))
    attrs = rig.getattr(fh)
    assert (attrs.uid, attrs.gid) == (1234, 4321)


def test_client_allow_list(tmp_path: Path) -> None:
    import ipaddress

    rig = make_rig(tmp_path / "net", networks=[ipaddress.ip_network("10.0.0.0/8")])
    rig.client = "10.1.2.3"
    root = rig.mount()
    rig.client = "127.0.0.1"
    assert rig.fails(NfsProc.GETATTR, rig.fh(root)) == NfsStat.ACCES


def test_subdirectory_mount_and_mount_errors(rig: Rig) -> None:
    (rig.root / "sub-1" / "deeper").mkdir(parents=True)
    sub = rig.mount("/data/sub-1")
    native = os.lstat(rig.root / "sub-1").st_ino
    assert rig.getattr(sub).fileid == expected_fileid(rig.export.vfs, "sub-1", native)
    assert rig.lookup(sub, "deeper")
    for bad in ("/other", "/data/missing", "/data/../etc", "/data/sub-1/../.."):
        with pytest.raises(AssertionError, match="MNT"):
            rig.mount(bad)


def test_handles_are_unforgeable_and_bound_to_their_export(tmp_path: Path) -> None:
    a = make_rig(tmp_path / "a", fsid=1)
    b = make_rig(tmp_path / "b", fsid=2)
    root_a = a.mount()
    (a.root / "f").write_text("x")
    fh = a.lookup(root_a, "f")
    forged = bytearray(fh)
    forged[6] ^= 1  # another inode number, same MAC
    assert a.fails(NfsProc.GETATTR, a.fh(bytes(forged))) == NfsStat.BADHANDLE
    assert a.fails(NfsProc.GETATTR, a.fh(b"\x01" * 10)) == NfsStat.BADHANDLE
    # b shares the secret of a in this rig, yet a's handle is another export's: refused
    assert b.fails(NfsProc.GETATTR, b.fh(fh)) == NfsStat.STALE


def test_handles_stay_valid_across_restart(tmp_path: Path) -> None:
    first = make_rig(tmp_path / "e")
    root = first.mount()
    d = first.mkdir(root, "dir")
    fh = first.create(d, "f")
    first.write(fh, 0, b"persisted")
    second = make_rig(tmp_path / "e")  # a new server over the same store: empty caches
    assert second.read(fh, 0, 100)[0] == b"persisted"


def test_removed_file_handle_is_stale(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "f")
    (rig.root / "f").unlink()
    assert rig.fails(NfsProc.GETATTR, rig.fh(fh)) == NfsStat.STALE


def test_write_verifier_changes_on_restart(tmp_path: Path) -> None:
    verifiers = []
    for _ in range(2):
        rig = make_rig(tmp_path / "e")
        fh = rig.create(rig.mount(), "f")
        u = rig.write(fh, 0, b"x")
        decode_wcc_data(u)
        u.uint32(), u.uint32()
        verifiers.append(bytes(u.fixed_opaque(8)))
    assert verifiers[0] != verifiers[1]


def test_time_set_to_server_time(rig: Rig, root: bytes) -> None:
    fh = rig.create(root, "f")
    os.utime(rig.root / "f", (0, 0))
    p = rig.fh(fh)
    for _ in range(4):
        p.bool(False)
    p.uint32(1)
    p.uint32(1)
    p.bool(False)
    rig.ok(NfsProc.SETATTR, p)
    assert abs(os.lstat(rig.root / "f").st_mtime - time.time()) < 60


def test_getattr_result_is_a_full_fattr3(rig: Rig, root: bytes) -> None:
    u = rig.ok(NfsProc.GETATTR, rig.fh(root))
    decode_fattr3(u)
    assert u.remaining() == 0


def test_nested_operations_leak_no_descriptors(rig: Rig, root: bytes) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    d = rig.mkdir(rig.mkdir(root, "a"), "b")
    gc.collect()  # files earlier tests left unclosed must not close in the middle of the count
    before = open_fds()
    for i in range(50):
        fh = rig.create(d, f"f{i}")
        rig.write(fh, 0, b"x")
        rig.lookup(d, f"f{i}")
        assert rig.fails(NfsProc.LOOKUP, rig.dirop(d, f"missing{i}")) == NfsStat.NOENT
    rig.readdirplus(d)
    for i in range(50):
        rig.ok(NfsProc.REMOVE, rig.dirop(d, f"f{i}"))
    assert open_fds() == before


def test_new_nodes_keep_their_exact_mode(rig: Rig, root: bytes) -> None:
    # neither the server's umask nor the chown to the caller's owner may change the mode
    old = os.umask(0o022)
    try:
        exact = make_rig(rig.root.parent / "umask", fsid=8)
    finally:
        os.umask(old)
    top = exact.mount("/data")
    os.chmod(exact.root, 0o777)
    for name, mode in [("w", 0o666), ("suid", 0o4777), ("sgid", 0o2755)]:
        exact.create(top, name, mode=mode, cred=user(1000))
        assert stat.S_IMODE(os.lstat(exact.root / name).st_mode) == mode, name
    exact.mkdir(top, "d", mode=0o777)
    assert stat.S_IMODE(os.lstat(exact.root / "d").st_mode) == 0o777
