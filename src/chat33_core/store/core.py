"""The store: every read and write of chat33's data, on SQLite or PostgreSQL.

:class:`Store` is the one object the rest of chat33 holds. It is made of one part per
table or aggregate, each the only owner of its SQL:

* :mod:`.orgs` — organizations, webhook secrets, users, sessions;
* :mod:`.keys` — API keys; :mod:`.accounts` — social accounts and credentials;
* :mod:`.posts` — posts, their logs and checkpoints; :mod:`.post_lists` — pages of posts;
* :mod:`.media` — media assets; :mod:`.uploads` — direct uploads;
* :mod:`.limits` — rate limits;
* :mod:`.leases` — the worker's queue (claims, leases, results, daily caps), the
  claim's statements in :mod:`.claims`;
* :mod:`.outbox` — webhook deliveries; :mod:`.connections` — OAuth connections.

They share :class:`.database.Database` (transactions, schema, readiness) and the one
private execution layer of :mod:`._sql`. Rows come back as the frozen models of
:mod:`chat33_core.models`; credentials are encrypted and decrypted by the caller (the
store never sees a raw token unless it is handed one to encrypt).
"""

from __future__ import annotations

from .accounts import Accounts
from .connections import Connections
from .engine import make_engine
from .keys import Keys
from .leases import Leases
from .limits import Limits, human_period
from .media import Media
from .orgs import Orgs
from .outbox import Outbox
from .post_lists import PostLists
from .posts import Posts, row_to_post
from .uploads import Uploads


class Store(Orgs, Keys, Accounts, Posts, PostLists, Media, Uploads, Limits, Leases,
            Outbox, Connections):
    """All of chat33's persistence. Thread-safe; share one per process."""


__all__ = ["Store", "human_period", "make_engine", "row_to_post"]
