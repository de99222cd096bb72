"""``Worker(once=True)``: a pass over what is due, which must not pass for one when the
database could not be asked."""

from __future__ import annotations

import socket

from chat33_core.config import Settings
from chat33_core.scheduling.worker import Worker
from chat33_core.service import Chat33

from ..conftest import SECRET


def test_once_on_a_database_it_cannot_reach_returns_1() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    core = Chat33(Settings.from_env({
        "CHAT33_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x",
        "CHAT33_SECRET_KEY": SECRET}), load_plugins=False)
    worker = Worker(core, once=True, listen=False, poll_s=0.05)
    assert worker.run() == 1
    assert worker.failed
