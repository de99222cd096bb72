"""Exactly-once and worker tests: a worker that dies at an exact step, a ``ctx.sleep``
that records its waits, and chat33's own worker publishing to a plugin's sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs

from ..config import Settings
from ..models import Account, Credentials, Post, PostStatus, new_id, utcnow
from ..platforms import MemoryCheckpoints
from ..sandbox import serve

if TYPE_CHECKING:
    from ..service import Chat33


class RecordingSleep:
    """``ctx.sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class WorkerCrash(BaseException):
    """The worker process dying (not an error the plugin could catch)."""


class CrashingCheckpoints(MemoryCheckpoints):
    """Checkpoints that act once, at the first save where ``when(data)`` holds: kill the
    'worker' (raise :class:`WorkerCrash`) or, given ``hook``, run it instead (inject a
    sandbox fault at that exact moment, say). With ``persist`` (the default) that save is
    kept, as the database keeps it; without, the worker dies before it reached the
    database. ``saves`` lists every state saved."""

    def __init__(self, when: Callable[[dict[str, Any]], bool],
                 hook: Callable[[], None] | None = None, *, persist: bool = True) -> None:
        super().__init__()
        self.when = when
        self.hook = hook
        self.persist = persist
        self.armed = True
        self.saves: list[dict[str, Any]] = []

    def save(self, data: Mapping[str, Any]) -> None:
        if self.armed and self.when(dict(data)):
            self.armed = False
            if self.persist:
                self._keep(data)
            if self.hook is None:
                raise WorkerCrash("the worker died")
            self.hook()
            if not self.persist:
                self._keep(data)
            return
        self._keep(data)

    def _keep(self, data: Mapping[str, Any]) -> None:
        super().save(data)
        self.saves.append(dict(data))


@attrs.define
class WorkerWorld:
    """chat33's own worker publishing to one plugin's sandbox: the core (the plugin
    registered, pointed at the served sandbox), an organization's user and account."""

    core: Chat33
    sandbox: Any
    url: str
    account: Account
    user_id: str

    def queue(self, texts: Sequence[str]) -> list[Post]:
        """A QUEUED post, or a thread published with its head."""
        head = new_id("post")
        now = utcnow()
        posts = [Post(id=head if i == 0 else new_id("post"), org_id=self.account.org_id,
                      account_id=self.account.id, platform=self.account.platform,
                      account_name=self.account.name, created_by=self.user_id, text=text,
                      status=PostStatus.QUEUED, thread_id=head if len(texts) > 1 else None,
                      thread_position=i, publish_with_head=i > 0, created_at=now,
                      updated_at=now)
                 for i, text in enumerate(texts)]
        return self.core.store.add_posts(posts)

    def run(self) -> None:
        """One pass of the worker (``chat33 worker --once``), which must exit 0."""
        from ..scheduling import Worker

        assert Worker(self.core, once=True, concurrency=1, grace_s=5.0).run() == 0

    def live(self, collection: str) -> list[dict[str, Any]]:
        """The items of the sandbox's ``state()[collection]`` not deleted."""
        return [x for x in self.sandbox.state()[collection] if not x.get("deleted")]


@contextmanager
def worker_world(plugin: ModuleType, sandbox: Any, settings: Callable[..., Settings], *,
                 name: str, username: str, external_id: str, credentials: Credentials,
                 metadata: Mapping[str, Any] | None = None) -> Iterator[WorkerWorld]:
    """Serve ``sandbox`` (the plugin's sandbox app) and make a :class:`WorkerWorld` on it:
    ``settings(**env)`` gives the Settings (the database, ...) with the plugin's
    ``CHAT33_<NAME>_API_BASE`` and fast retries added; the account is what ``chat33
    accounts add --platform NAME --username ... --external-id ... --token ...`` adds."""
    from ..models import Organization, User
    from ..service import Chat33

    platform = plugin.__name__.removeprefix("chat33_")
    with serve(sandbox) as url:
        core = Chat33(settings(**{f"CHAT33_{platform.upper()}_API_BASE": url,
                                  "CHAT33_RETRY_BASE_S": "0.01"}), load_plugins=False)
        core.host.register(plugin, name=platform)
        try:
            core.store.migrate()
            org = core.store.add_org(Organization.new("Acme"))
            user = core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                            email=f"{platform}@example.com",
                                            password_hash="-"))
            account = core.add_account(org.id, platform, name, username=username,
                                       external_id=external_id, credentials=credentials,
                                       metadata=metadata)
            yield WorkerWorld(core, sandbox, url, account, user.id)
        finally:
            core.store.dispose()
