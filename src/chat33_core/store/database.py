"""The database under every aggregate of the store: transactions (SQLite's write
turns, the driver-level hot paths), schema and readiness.

A database that cannot be reached or used right now surfaces from every transaction
(:meth:`Database.begin`, :meth:`Database.read` and their driver-level hot paths) as
:class:`~chat33_core.errors.StoreUnavailable`, whose message holds no SQL (see
:mod:`.unavailable`)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigurationError
from ._sql import Query, run_args
from .engine import BUSY_TIMEOUT_S, CHECKPOINT_EVERY, QUICK_TIMEOUT_S, make_engine
from .readers import Readers
from .unavailable import translating
from .writers import write_turns

log = logging.getLogger(__name__)


class Database:
    """The connection to chat33's database. Thread-safe; share one per process."""

    def __init__(self, engine: Engine | str, *, checkpoint_every: int = CHECKPOINT_EVERY
                 ) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        #: SQLite: checkpoint the write-ahead log after this many write transactions
        self.checkpoint_every = checkpoint_every
        sqlite = self.engine.dialect.name == "sqlite"
        self._turns = write_turns(self.engine.url.database) if sqlite else None
        self._readers = Readers(self.engine) if sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. On SQLite, writers first wait their turn on locks that
        wake them as soon as the writer before them is done (:mod:`.writers`), rather
        than in SQLite's sleeping busy handler. Raises :class:`StoreUnavailable` when the
        database cannot be used right now."""
        with translating, self._turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _begin_driver(self) -> Iterator[Any]:
        """:meth:`begin` on the DBAPI connection itself, for the hot write paths (see
        :class:`Query`): the same turn, ``BEGIN IMMEDIATE`` on SQLite (on a connection
        of :class:`.readers.Readers`: SQLite's writers of a process take turns, so they
        rarely need more than one), commit or roll back."""
        with translating, self._turn():
            if self._readers is None:
                fairy = self.engine.raw_connection()
                try:
                    pg: Any = fairy.driver_connection
                    try:
                        yield pg
                    except BaseException:
                        pg.rollback()
                        raise
                    pg.commit()
                finally:
                    fairy.close()
                return
            driver = self._readers.take()
            try:
                driver.execute("BEGIN IMMEDIATE")
            except BaseException:
                driver.close()  # not worth finding out whether it is still good
                raise
            try:
                yield driver
            except BaseException:
                self._end(driver, "rollback")  # a refusal (RateLimited...) is common
                raise
            self._end(driver, "commit")

    def _end(self, driver: Any, how: str) -> None:
        """Commit or roll back a SQLite transaction of :meth:`_begin_driver` and keep
        its connection; a connection whose transaction could not end is closed (which
        rolls it back)."""
        assert self._readers is not None
        try:
            getattr(driver, how)()
        except BaseException:
            driver.close()
            raise
        self._readers.give(driver)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """SQLite: the write turn, and every ``checkpoint_every`` writes a checkpoint
        once the turn is over. PostgreSQL: nothing (its locks order the writers)."""
        if self._turns is None:
            yield
            return
        with self._turns.turn():
            yield
        if self._turns.wrote(self.checkpoint_every):
            try:
                self.checkpoint()
            except Exception:
                # the write before it has committed: its caller must not see a failure
                # (it might write again); the next checkpoint, or SQLite's, catches up
                log.warning("SQLite checkpoint failed", exc_info=True)
            finally:
                self._turns.checkpointed()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """SQLite: copy what the write-ahead log holds into the database without waiting
        for anyone (``PRAGMA wal_checkpoint(PASSIVE)``); (busy, log pages, pages copied).
        :meth:`begin` does it every ``checkpoint_every`` writes of a process, after its
        write turn: SQLite's automatic checkpoint runs inside the committing writer's
        turn and keeps every other writer waiting through its copying and syncing (it
        stays as a backstop at ``WAL_BACKSTOP_PAGES``). PostgreSQL: nothing to do (None)."""
        if self._turns is None:
            return None
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                busy, log, done = cursor.fetchone() or (1, 0, 0)
            finally:
                cursor.close()
        finally:
            conn.close()
        return int(busy), int(log), int(done)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite a deferred one: it never blocks writers).
        Raises :class:`StoreUnavailable` when the database cannot be used right now."""
        with translating, self.engine.connect() as conn:
            conn = conn.execution_options(chat33_readonly=True)
            with conn.begin():
                yield conn

    def _fetch(self, query: Query, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The rows of one read-only statement, run on a DBAPI connection (see
        :class:`Query`) in autocommit mode: the statement is its own read transaction.
        SQLite: on a connection of :class:`.readers.Readers`. PostgreSQL: on a pooled
        connection, which goes back to the pool with no transaction to roll back (a
        round trip saved). Raises :class:`StoreUnavailable` as :meth:`read` does."""
        with translating:
            compiled = query.compiled(self.engine.dialect)
            args = [compiled.args(params)]
            if self._readers is not None:  # SQLite's connections are in autocommit already
                driver = self._readers.take()
                try:
                    rows = run_args(driver, compiled.sql, args)
                except BaseException:
                    driver.close()  # not worth finding out whether it is still good
                    raise
                self._readers.give(driver)
                return rows
            conn = self.engine.raw_connection()
            try:
                pg: Any = conn.driver_connection
                pg.autocommit = True
                try:
                    return run_args(pg, compiled.sql, args)
                finally:
                    pg.autocommit = False
            finally:
                conn.close()

    def _run(self, conn: Connection | Any, query: Query, *params: Mapping[str, Any]
             ) -> list[Sequence[Any]]:
        """Run ``query`` in ``conn``'s transaction (of :meth:`begin` or
        :meth:`_begin_driver`), once per set of ``params``, on its DBAPI connection (see
        :class:`Query`); returns the rows of a single run."""
        compiled = query.compiled(self.engine.dialect)
        return run_args(conn, compiled.sql, [compiled.args(p) for p in params])

    def listen(self, channel: str, stopping: threading.Event,
               notified: Callable[[], None]) -> None:
        """PostgreSQL: call ``notified`` on every ``NOTIFY`` of ``channel`` until
        ``stopping`` is set, on a connection of its own (outside the pool). Raises when
        the connection fails (the caller listens again)."""
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()
        try:
            conn.autocommit = True
            conn.execute(f"LISTEN {channel}")
            while not stopping.is_set():
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    notified()
        finally:
            with contextlib.suppress(Exception):
                raw.close()

    def dispose(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self.engine.dispose()

    # --- schema -----------------------------------------------------------------

    def _schema(self) -> tuple[Any, bool]:
        """(alembic config, whether the database is at the newest migration)."""
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(files("chat33_core") / "migrations"))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with translating, self.engine.connect() as conn:
            return cfg, MigrationContext.configure(conn).get_current_revision() == head

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (safe to run twice)."""
        from alembic import command

        cfg, current = self._schema()
        if current:
            return  # up to date: no need to run the migration environment
        with translating, self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def require_schema(self) -> None:
        """Raise :class:`ConfigurationError` unless the database is at the newest
        migration (:class:`StoreUnavailable` when it cannot be reached)."""
        if not self._schema()[1]:
            raise ConfigurationError(
                "the database has no chat33 tables or an older schema: run `chat33 init` "
                "first")

    def ping(self) -> bool:
        """True when the database can be used now; raises otherwise. On SQLite the
        write lock is asked for (and released at once) with a short wait
        (``QUICK_TIMEOUT_S``): a locked database answers in a second, not thirty."""
        if self._readers is None:
            with self.read() as conn:
                run_args(conn, "SELECT 1", [()])
            return True
        with translating, self._quick_write():
            pass
        return True

    @contextmanager
    def _quick_write(self) -> Iterator[Any]:
        """SQLite: a write transaction on a driver connection that waits at most
        ``QUICK_TIMEOUT_S`` for the write lock (``sqlite3.OperationalError`` beyond), for
        the writes nobody should wait long for. Outside the write turns, whose waiting
        has no deadline: a turn may be held by a writer waiting for the same lock."""
        assert self._readers is not None
        driver = self._readers.take()
        try:
            driver.execute(f"PRAGMA busy_timeout={int(QUICK_TIMEOUT_S * 1000)}")
            try:
                driver.execute("BEGIN IMMEDIATE")
                try:
                    yield driver
                except BaseException:
                    driver.rollback()
                    raise
                driver.commit()
            finally:
                driver.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        except BaseException:
            driver.close()  # not worth finding out whether it is still good
            raise
        self._readers.give(driver)

