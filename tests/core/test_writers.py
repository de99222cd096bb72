"""SQLite writers take turns: threads on a mutex, processes on a file lock."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from chat33_core.store import Store
from chat33_core.store.writers import WriteTurns, write_turns

HOLD_A_TURN = """
import sys
from chat33_core.store import Store
store = Store(sys.argv[1])
with store.begin():
    print("holding", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def _locked_elsewhere(path: str) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def test_a_write_transaction_holds_the_databases_file_lock(sqlite_store: Store) -> None:
    lock_file = f"{sqlite_store.engine.url.database}-writers"
    with sqlite_store.begin():
        assert _locked_elsewhere(lock_file)
    assert not _locked_elsewhere(lock_file)
    with sqlite_store.read():
        assert not _locked_elsewhere(lock_file), "readers take no turn"


def test_a_writer_in_another_process_waits_for_the_turn(sqlite_store: Store) -> None:
    url = sqlite_store.engine.url.render_as_string()
    child = subprocess.Popen([sys.executable, "-c", HOLD_A_TURN, url], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "holding\n"
        entered = threading.Event()

        def write() -> None:
            with sqlite_store.begin():
                entered.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.3), "the turn is the other process's"
        child.stdin.write("go\n")
        child.stdin.flush()
        writer.join(timeout=10)
        assert entered.is_set()
        assert child.stdout.readline() == "released\n"
    finally:
        child.kill()
        child.wait()


def test_threads_take_turns_and_a_thread_may_nest_its_turn(sqlite_store: Store) -> None:
    turns = write_turns(sqlite_store.engine.url.database)
    inside: list[int] = []
    overlaps: list[int] = []

    def write() -> None:
        with turns.turn():
            inside.append(1)
            overlaps.append(len(inside))
            with turns.turn():  # nested: no wait on itself
                time.sleep(0.001)
            inside.pop()

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert overlaps == [1] * 8


def test_stores_on_one_file_share_the_turns(sqlite_store: Store) -> None:
    other = Store(sqlite_store.engine.url.render_as_string())
    try:
        assert other._turns is sqlite_store._turns
    finally:
        other.dispose()


def _child_waits_for_the_parents_turn(parent_turn: AbstractContextManager[Any],
                                      turns: WriteTurns) -> None:
    """Fork while the parent holds ``parent_turn``; the child takes ``turns.turn()`` and
    reports whether it got it only after the parent's turn ended."""
    released, told = os.pipe()
    answer, report = os.pipe()
    with parent_turn:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            with turns.turn():
                os.set_blocking(released, False)
                try:
                    after = os.read(released, 1) == b"r"
                except BlockingIOError:
                    after = False
            os.write(report, b"1" if after else b"0")
            os._exit(0)
        time.sleep(0.3)  # room for a child that wrongly got the turn to take it
        os.write(told, b"r")  # the last thing before the parent's turn ends
    assert os.read(answer, 1) == b"1", "the child got the turn while the parent held it"
    os.waitpid(pid, 0)
    for fd in (released, told, answer, report):
        os.close(fd)


def test_a_forked_child_takes_turns_of_its_own(sqlite_store: Store) -> None:
    """A child forked while the parent holds the turn neither inherits it nor shares the
    parent's file lock: it waits for the parent like any other process."""
    assert sqlite_store._turns is not None
    _child_waits_for_the_parents_turn(sqlite_store.begin(), sqlite_store._turns)


def test_turns_made_directly_are_a_forked_childs_own_too(tmp_path: Path) -> None:
    """Not only the shared turns of write_turns(): any WriteTurns the parent used opens
    its lock file anew in a child, so the child waits for the parent's turn."""
    turns = WriteTurns(str(tmp_path / "direct.db"))
    with turns.turn():
        pass  # the parent has opened its lock file
    _child_waits_for_the_parents_turn(turns.turn(), turns)


def _orgs_in_the_database_file(path: str) -> int:
    """Organizations in the database file itself, the write-ahead log ignored (what has
    been checkpointed)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM organizations").fetchone()[0])
    finally:
        conn.close()


def _add_org(store: Store, name: str) -> None:
    from chat33_core.models import Organization

    store.add_org(Organization(id=f"org_{name}", name=name))


def test_the_log_is_checkpointed_every_n_writes_after_the_turn(sqlite_template: Path,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "chat33.db"
    path.write_bytes(sqlite_template.read_bytes())
    lock_file = f"{path}-writers"
    held_during_checkpoint: list[bool] = []

    class Watched(Store):
        def checkpoint(self) -> tuple[int, int, int] | None:
            held_during_checkpoint.append(_locked_elsewhere(lock_file))
            return super().checkpoint()

    store = Watched(f"sqlite:///{path}", checkpoint_every=5)
    try:
        before = _orgs_in_the_database_file(str(path))
        for i in range(4):
            _add_org(store, f"early {i}")
        assert _orgs_in_the_database_file(str(path)) == before, "still in the log only"
        assert held_during_checkpoint == []
        _add_org(store, "fifth")
        assert _orgs_in_the_database_file(str(path)) == before + 5
        assert held_during_checkpoint == [False], "checkpointed once, outside any turn"
        assert store._turns is not None
        with store._turns.turn():  # writes inside a held turn do not checkpoint in it
            for i in range(6):
                _add_org(store, f"nested {i}")
        assert held_during_checkpoint == [False]
        _add_org(store, "after the turn")  # the first write outside it does
        assert held_during_checkpoint == [False, False]
        assert _orgs_in_the_database_file(str(path)) == before + 12
    finally:
        store.dispose()


def test_checkpoint_reports_the_log_and_is_nothing_to_do_on_postgresql(store: Store) -> None:
    _add_org(store, "one")
    result = store.checkpoint()
    if store.is_postgres:
        assert result is None
        return
    assert result is not None
    busy, log, copied = result
    assert busy == 0 and log > 0 and copied == log


def test_a_failed_checkpoint_does_not_fail_the_write_before_it(
        sqlite_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "chat33.db"
    path.write_bytes(sqlite_template.read_bytes())

    class Failing(Store):
        def checkpoint(self) -> tuple[int, int, int] | None:
            raise OSError("disk trouble")

    store = Failing(f"sqlite:///{path}", checkpoint_every=2)
    try:
        _add_org(store, "one")
        with caplog.at_level("WARNING", logger="chat33_core.store.database"):
            _add_org(store, "two")  # committed, then the checkpoint fails
        assert "checkpoint failed" in caplog.text
        assert {o.name for o in (store.get_org("org_one"), store.get_org("org_two"))} == {
            "one", "two"}
        _add_org(store, "three")  # and writing goes on
    finally:
        store.dispose()
