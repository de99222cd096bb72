"""The short version of ``bench/scale.py`` on PostgreSQL: real worker processes, many
organizations, one dumping a backlog half way. Fairness is asserted by the order in
which publishes started, never by how long anything took."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402

ORGS, CHANNELS, POSTS, DUMP, WORKERS = 20, 100, 3000, 1500, 2


@pytest.mark.slow
@pytest.mark.postgres
def test_a_backlog_dumped_by_one_org_does_not_hold_back_the_others(
        pg_server_url: str) -> None:
    with scale.database(pg_server_url) as url:
        world = scale.build(url, ORGS, CHANNELS)
        try:
            result = scale.scale_run(world, posts=POSTS, dump=DUMP, run_s=20,
                                     workers=WORKERS, timeout_s=600)
        finally:
            world.core.store.dispose()
    assert result.duplicates == 0
    assert len({pid for _, pid, *_ in result.started}) == POSTS
    big_channels = CHANNELS // ORGS
    # For each other organization's post due while the backlog waited: how many of the
    # big organization's posts started between its due time and its own start. The big
    # organization publishes one post per channel at a time, so each claim starts at
    # most `big_channels` of them, and the post is in the next claim once due.
    started = result.started
    overtaken = []
    for i, (_, _, org, scheduled, _) in enumerate(started):
        if org == result.big or scheduled < result.dump_at:
            continue
        due_from = next(j for j, row in enumerate(started) if row[4] >= scheduled)
        overtaken.append(sum(1 for row in started[due_from:i] if row[2] == result.big))
    dump_starts = [j for j, row in enumerate(started) if row[1] in result.dump_ids]
    assert len(overtaken) > 100  # plenty of posts fell due while the backlog waited
    assert dump_starts[-1] - dump_starts[0] > DUMP  # others were served in between
    # strictly oldest first, each would wait for the whole backlog (1,500)
    assert max(overtaken) <= 4 * WORKERS * big_channels, sorted(overtaken)[-10:]
