"""Shared fixtures: real databases (SQLite always; PostgreSQL when configured).

PostgreSQL tests run when ``CHAT33_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it to the
machine's server); each test gets a schema of its own. In CI (``CI=true``) a missing
PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from chat33_core.config import Settings
from chat33_core.store import Store

settings.register_profile("default", max_examples=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

PG_ENV = "CHAT33_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _slow_tests_one_at_a_time(request: pytest.FixtureRequest,
                              tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under pytest-xdist, tests marked ``slow`` (many processes, big files, tight timing)
    take turns: the other workers go on with the rest of the suite meanwhile, so a test
    that saturates the CPU never starves one that counts on prompt answers."""
    if (request.node.get_closest_marker("slow") is None
            or "PYTEST_XDIST_WORKER" not in os.environ):
        yield
        return
    import fcntl  # POSIX: the process tests need it anyway

    # the workers' base temporary directories share this run's parent
    lock = tmp_path_factory.getbasetemp().parent / "slow-tests.lock"
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """The process's logging as ``chat33 serve`` sets it up at ``CHAT33_LOG_LEVEL=DEBUG``,
    its lines written to the returned buffer instead of stderr; undone afterwards."""
    from chat33_core import logs

    root = logging.getLogger()
    level, factory = root.level, logging.getLogRecordFactory()
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    handler = logs.configure("text", "DEBUG")
    assert isinstance(handler, logging.StreamHandler)
    lines = io.StringIO()
    handler.setStream(lines)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        for name, was in quiet.items():
            logging.getLogger(name).setLevel(was)


def postgres_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set in CI: the PostgreSQL half of the suite must run")
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV}="
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test to run them")
    return url


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = postgres_url()
    assert url is not None
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {exc.orig}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc.orig}")
    return url


def new_pg_schema(server_url: str) -> tuple[str, str]:
    """Create an empty schema; returns (schema, URL whose search_path is that schema)."""
    schema = "t_" + secrets.token_hex(6)
    engine = sa.create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in server_url else "?"
    return schema, f"{server_url}{sep}options=-csearch_path%3D{schema}"


def drop_pg_schema(server_url: str, schema: str) -> None:
    engine = sa.create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "chat33.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture(scope="session")
def pg_session_schema(pg_server_url: str) -> Iterator[str]:
    """One migrated schema per test session (per xdist worker); tests truncate it."""
    schema, url = new_pg_schema(pg_server_url)
    store = Store(url)
    store.migrate()
    store.dispose()
    try:
        yield url
    finally:
        drop_pg_schema(pg_server_url, schema)


def _truncate_all(url: str) -> None:
    from chat33_core.store.tables import metadata

    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database on each engine: a copy of a migrated SQLite file, or
    the session's PostgreSQL schema truncated."""
    if request.param == "sqlite":
        import shutil

        path = tmp_path / "chat33.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_session_schema")
    _truncate_all(url)
    yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("pg_server_url")
    schema, url = new_pg_schema(server)
    try:
        yield url
    finally:
        drop_pg_schema(server, schema)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    """A store on a migrated SQLite file of its own (SQLite-only behaviour)."""
    path = tmp_path / "chat33.db"
    path.write_bytes(sqlite_template.read_bytes())
    s = Store(f"sqlite:///{path}")
    yield s
    s.dispose()


@pytest.fixture
def settings_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for a database URL, with a secret key and a media dir under tmp_path."""

    def make(db_url: str, **env: str) -> Settings:
        base = {
            "CHAT33_DATABASE_URL": db_url,
            "CHAT33_SECRET_KEY": SECRET,
            "CHAT33_MEDIA_DIR": str(tmp_path / "media"),
            "CHAT33_ALLOW_PRIVATE_URLS": "1",
            "CHAT33_POLL_INTERVAL_S": "0.01",
        }
        base.update(env)
        return Settings.from_env(base)

    return make


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto S3 server process shared by the session's tests (each
    test makes its own bucket)."""
    from tests.s3server import s3_server

    with s3_server(tmp_path_factory.mktemp("moto")) as url:
        yield url
