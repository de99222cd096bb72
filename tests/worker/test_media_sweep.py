"""The worker runs the media retention sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from chat33_core.errors import NotFound
from chat33_core.models import PostStatus
from chat33_core.testing import make_image

from .conftest import Env, wait_until


def gone(env: Env, media_id: str) -> bool:
    try:
        env.store.get_media(media_id)
    except NotFound:
        return True
    return False


def test_the_worker_sweeps_media_no_post_needs(make_env: Callable[..., Env],
                                               tmp_path: Path) -> None:
    # a retention of a tenth of a second, swept every 50 ms
    env = make_env(CHAT33_MEDIA_RETENTION_DAYS=str(0.1 / 86400), CHAT33_MEDIA_SWEEP_S="0.05")
    org = env.principal.org_id
    with make_image(tmp_path / "a.jpg", 40, 40).open("rb") as fh:
        unused = env.core.media.upload(org, fh, "a.jpg")
    with make_image(tmp_path / "b.jpg", 50, 50).open("rb") as fh:
        used = env.core.media.upload(org, fh, "b.jpg")
    env.posts(1, media_ids=[used.id], media_urls=[used.url], status=PostStatus.DRAFT)
    worker = env.worker(once=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_until(lambda: gone(env, unused.id), 20, "the sweep to delete unused media")
    finally:
        worker.stop()
        thread.join(30)
    assert not env.core.media.files.exists(unused.url.rsplit("/", 1)[1])
    assert not gone(env, used.id)  # a draft still uses it
