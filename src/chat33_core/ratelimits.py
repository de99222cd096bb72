"""Rate limits: each limited operation counted per organization, user, email or client
address, in the store (GCRA), so the counts hold across processes."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta

from .errors import Issue, RateLimited, ValidationError
from .models import LogEvent, Post
from .security import digest
from .store import Store, human_period
from .store.limits import LimitReached

log = logging.getLogger(__name__)

#: (limit, period) per limited operation; override with Chat33(rate_limits=...)
DEFAULT_RATE_LIMITS: dict[str, tuple[int, timedelta]] = {
    "posts.create": (30, timedelta(hours=1)),
    "media.upload": (50, timedelta(hours=1)),
    # a dry run fetches media like a post does (the request's bytes are capped too)
    "posts.validate": (120, timedelta(hours=1)),
    "api_keys.create": (10, timedelta(hours=1)),
    # sign-in attempts that failed, per email and per client address (a right password
    # is given back); the address allows more, as many people may share one (NAT)
    "auth.login.email": (10, timedelta(minutes=15)),
    "auth.login.address": (50, timedelta(minutes=15)),
}

#: a rate-limit count: (limit, remaining, seconds until the allowance is full again)
RateCount = tuple[int, int, float]

#: what a sign-in counted: (store key, limit, period) per limit
LoginCount = list[tuple[str, int, timedelta]]


class RateLimits:
    """The counts of the limited operations. Given the store and the limits
    (``operation -> (limit, period)``)."""

    def __init__(self, store: Store, limits: Mapping[str, tuple[int, timedelta]]) -> None:
        self.store = store
        self.limits = limits

    def hit(self, operation: str, key: str, *,
            insert: tuple[Sequence[Post], Sequence[LogEvent]] | None = None) -> RateCount:
        """Count ``operation`` for ``key``: once, or with ``insert`` (posts and their
        logs) once per post, the posts inserted in the count's transaction
        (:meth:`Store.add_posts_counted`). Returns (limit, remaining, reset seconds) or
        raises RateLimited."""
        limit, period = self.limits[operation]
        if insert is not None:
            posts = insert[0]
            if len(posts) > limit:  # it would never fit: say so instead of "retry later"
                raise ValidationError(
                    f"this request makes {len(posts)} posts (one per account and thread "
                    f"part), over the limit of {limit} posts per {human_period(period)}",
                    details=[Issue("accountIds", f"{len(posts)} posts is over the limit "
                                                 f"of {limit}", code="too_many")])
            remaining, reset = self.store.add_posts_counted(f"{operation}:{key}", limit,
                                                            period, *insert)
        else:
            remaining, reset = self.store.hit_rate_limit(f"{operation}:{key}", limit, period)
        return limit, remaining, reset

    @contextmanager
    def counted(self, operation: str, key: str) -> Iterator[RateCount]:
        """Count one ``operation`` for ``key`` (:meth:`hit`) for the block, and give it
        back when the block raises: a request that is refused (a corrupt upload, a URL
        that cannot be fetched) does not use the allowance. Counted up front, so
        parallel requests cannot overshoot the limit."""
        result = self.hit(operation, key)
        try:
            yield result
        except BaseException:
            limit, period = self.limits[operation]
            try:
                self.store.give_back_rate_limit(f"{operation}:{key}", limit, period)
            except Exception:  # the refusal is the answer; a lost give-back costs one
                log.warning("could not give back a refused %s for %s", operation, key,
                            exc_info=True)
            raise

    def count_login(self, email: str, client: str | None) -> LoginCount:
        """Count one sign-in attempt for the email and the client address, both or
        neither (one transaction); returns what was counted, for :meth:`give_back`.
        The email is kept as its digest: the key stays short and names nobody."""
        keys = [("auth.login.email", digest(email), "for this email address")]
        if client:
            keys.append(("auth.login.address", client[:100], "from this address"))
        counted = [(f"{operation}:{who}", *self.limits[operation])
                   for operation, who, _ in keys]
        try:
            self.store.hit_rate_limits(counted)
        except LimitReached as exc:
            raise RateLimited(
                f"too many failed sign-ins {keys[exc.index][2]}; retry in "
                f"{math.ceil(exc.retry_after)} s", retry_after=exc.retry_after,
                limit=exc.limit, reset_after=exc.reset_after) from None
        return counted

    def give_back(self, counted: LoginCount) -> None:
        for key, limit, period in counted:
            self.store.give_back_rate_limit(key, limit, period)


__all__ = ["DEFAULT_RATE_LIMITS", "LoginCount", "RateCount", "RateLimits"]
