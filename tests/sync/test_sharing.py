"""A file another program holds open (Excel on Windows: replacing it is a sharing violation)
is synced once it is released; the agent meanwhile fails that one path and goes on. Under the
Windows surface (tests/support/winsurface) the replace really is refused first.

A read-only file (Windows' read-only attribute: no owner write bit) can be neither replaced nor
deleted there; the synchroniser clears the attribute and goes on. Under the surface those
calls really are refused first."""

from __future__ import annotations

import os

from filesim.waiting import apoll_until

from .conftest import Rig, make_server, running, stop, write


async def test_a_file_held_open_is_replaced_once_released(rig: Rig) -> None:
    write(rig.folder, "book.xlsx", "v1")
    write(rig.folder, "other.txt", "x")
    agent = rig.agent()
    task = await running(agent)
    try:
        held = os.open(rig.folder / "book.xlsx", os.O_RDONLY)  # the spreadsheet program
        try:
            write(rig.store, "book.xlsx", "v2 from nfs")
            write(rig.store, "news.txt", "fresh")
            agent.notify_export_change("book.xlsx", "commit")
            agent.notify_export_change("news.txt", "commit")
            await apoll_until(lambda: (rig.folder / "news.txt").exists(), 30, what="news.txt")
        finally:
            os.close(held)
        await apoll_until(
            lambda: (rig.folder / "book.xlsx").read_text() == "v2 from nfs", 60,
            what="book.xlsx once released",
        )  # fmt: skip
        assert agent.halted() is None and not task.done()
        if os.environ.get("FILESIM_WINDOWS_SURFACE") == "1":
            assert agent.status().errors >= 1  # the refused replace was a failed action
    finally:
        await stop(task)


async def test_read_only_files_are_replaced_and_deleted_with_the_planned_mode(rig: Rig) -> None:
    for name in ("report.pdf", "old.txt"):
        os.chmod(write(rig.folder, name, f"{name} v1"), 0o444)
    agent = rig.agent(make_server(settle_ms=0, backend="path"))
    task = await running(agent)
    try:
        await agent.flush(30)
        assert (rig.store / "old.txt").exists()
        for name in ("report.pdf", "old.txt"):  # an NFS client may change them: its right
            os.chmod(rig.store / name, 0o644)
        os.chmod(write(rig.store, "report.pdf", "v2 from nfs"), 0o640)
        os.unlink(rig.store / "old.txt")
        agent.notify_export_change("report.pdf", "commit")
        agent.notify_export_change("old.txt", "remove")
        await agent.flush(30)
        assert (rig.folder / "report.pdf").read_text() == "v2 from nfs"
        assert (rig.folder / "report.pdf").stat().st_mode & 0o777 == 0o640, "the planned mode"
        assert not (rig.folder / "old.txt").exists()
        assert agent.status().errors == 0 and agent.halted() is None
    finally:
        await stop(task)
