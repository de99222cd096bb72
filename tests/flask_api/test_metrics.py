"""``/metrics`` on the API: Prometheus text, the queue depth from the database, an
optional bearer token, and counts that add up over gunicorn's several processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from chat33_core.models import PostStatus, utcnow
from chat33_core.store import tables as t

from ..metrics_text import families, value
from .conftest import Api, make_app, make_core, make_org
from .test_serve import _free_port, _up

TOKEN = "metrics-token-for-the-tests"


def _scrape(api: Api, **headers: str) -> Any:
    return FlaskClient(api.app).get("/metrics", headers=headers)


def test_metrics_is_prometheus_text_with_the_queue_depth(api: Api) -> None:
    due = [api.create(text=f"due {i}")["posts"][0]["id"] for i in range(3)]
    later = (utcnow() + timedelta(hours=1)).isoformat()
    api.create(text="later", scheduledAt=later)
    # one post leased by a live worker, one whose worker's lease expired (due again)
    now = utcnow()
    with api.core.store.begin() as c:
        for post_id, expires in ((due[0], now + timedelta(minutes=5)),
                                 (due[1], now - timedelta(minutes=5))):
            c.execute(t.posts.update().where(t.posts.c.id == post_id).values(
                status=PostStatus.PUBLISHING.value, lease_owner="w1",
                lease_expires_at=expires))
    response = _scrape(api)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert value(text, "chat33_queue_posts", state="due") == 2
    assert value(text, "chat33_queue_posts", state="leased") == 1
    assert {"chat33_queue_posts", "chat33_posts_created_total",
            "chat33_http_request_duration_seconds"} <= families(text)


def test_requests_are_counted_by_route_method_and_status(api: Api) -> None:
    before = _scrape(api).get_data(as_text=True)
    post_id = api.create()["posts"][0]["id"]
    api.get(f"/posts/{post_id}")
    api.get("/posts/post_doesnotexist")
    FlaskClient(api.app).get("/no/such/page")
    text = _scrape(api).get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(before, name, **labels)

    count = "chat33_http_request_duration_seconds_count"
    assert delta(count, route="/api/v1/posts", method="POST", status="201") == 1
    rule = "/api/v1/posts/<id>"
    assert delta(count, route=rule, method="GET", status="200") == 1
    assert delta(count, route=rule, method="GET", status="404") == 1
    # a path of no route is one label value, whatever the path was
    assert delta(count, route="unmatched", status="404") == 1
    assert delta("chat33_posts_created_total", platform="x") == 1


def test_a_metrics_token_is_asked_for_in_the_error_shape(db_url: str, settings_for: Any
                                                         ) -> None:
    core = make_core(settings_for(db_url, CHAT33_METRICS_TOKEN=TOKEN))
    try:
        client = FlaskClient(make_app(core))
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN},
                        {"authorization": f"Basic {TOKEN}"}):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            body = refused.get_json()
            assert body["error"] == "Unauthorized"
            assert "CHAT33_METRICS_TOKEN" in body["message"] and TOKEN not in body["message"]
        allowed = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        assert "chat33_queue_posts" in allowed.get_data(as_text=True)
    finally:
        core.store.dispose()


def test_an_unreachable_database_leaves_the_queue_depth_out_not_the_scrape(
        settings_for: Any, tmp_path: Path) -> None:
    core = make_core(settings_for(f"sqlite:///{tmp_path / 'gone.db'}"))
    try:
        client = FlaskClient(make_app(core))
        with core.store.begin() as c:
            c.execute(sa.text("DROP TABLE posts"))
        response = client.get("/metrics")
        assert response.status_code == 200
        assert "chat33_queue_posts" not in response.get_data(as_text=True)
    finally:
        core.store.dispose()


@pytest.mark.slow
def test_gunicorn_workers_metrics_add_up_in_every_scrape(settings_for: Any,
                                                         tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'served.db'}")
    core = make_core(settings)
    org = make_org(core, "Scraped")
    core.store.dispose()
    port = _free_port()
    runs = tmp_path / "tmp"
    runs.mkdir()
    # TMPDIR: where serve makes the run's metrics directory, for the test to look at
    env = {**os.environ, **settings.env, "TMPDIR": str(runs), "CHAT33_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chat33_core.cli import main; main()", "serve",
         "--port", str(port), "--workers", "3", "--threads", "1"],
        env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _up(base, proc)
        count = "chat33_http_request_duration_seconds_count"
        started = value(httpx.get(base + "/metrics").text, count, route="/healthz")
        # requests in parallel, so that the sync workers share them
        def hit(n: int) -> None:
            with httpx.Client(base_url=base) as client:
                for _ in range(n):
                    assert client.get("/healthz").status_code == 200
        threads = [threading.Thread(target=hit, args=(10,)) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for i in range(5):
            created = httpx.post(base + "/api/v1/posts", headers=org.headers,
                                 json={"accountIds": [org.accounts["x"]], "text": f"p{i}"})
            assert created.status_code == 201
        run_dirs = list(runs.glob("chat33-metrics-*"))
        assert len(run_dirs) == 1
        pids = {p.stem.rsplit("_", 1)[1] for p in run_dirs[0].glob("*.db")}
        assert pids and str(proc.pid) not in pids  # the workers record, not the arbiter
        scrapes = [httpx.get(base + "/metrics") for _ in range(6)]
        for n, scrape in enumerate(scrapes):
            assert scrape.status_code == 200
            text = scrape.text
            # the 40 health checks, whichever worker answers the scrape
            assert value(text, count, route="/healthz", status="200") == started + 40
            assert value(text, "chat33_posts_created_total", platform="x") == 5
            assert value(text, "chat33_queue_posts", state="due") == 5
            # the earlier scrapes are counted by now
            assert value(text, count, route="/metrics") == n + 1
            assert {"chat33_http_request_duration_seconds", "chat33_posts_created_total",
                    "chat33_queue_posts"} <= families(text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not list(runs.glob("chat33-metrics-*")), "the run's metrics directory is left"
