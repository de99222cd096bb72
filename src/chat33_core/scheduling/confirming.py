"""Unknown outcomes: the post was sent and no answer came, so it may be on the platform.
The attempt asks the platform (``platform.confirm``) before it posts again: found ->
PUBLISHED; not there -> retry; cannot tell -> FAILED, saying so and naming the account.
A durable mark in the checkpoint makes the next attempt (after a crash too) ask first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx

from ..errors import PlatformError, StoreUnavailable, TransientError, UnknownOutcome
from ..http import transport_error
from ..platforms import PlatformBase, PublishContext, PublishResult
from ..store.unavailable import behind, safe_text
from .context import AttemptLog, DurableCheckpoints
from .outcomes import Outcome, Outcomes
from .queue import Claim

_R = TypeVar("_R")

#: methods whose lost answer may hide something created on the platform
CREATING_METHODS = frozenset({"POST", "PUT", "PATCH"})


def escaped_transport_error(exc: httpx.RequestError, name: str) -> PlatformError:
    """:func:`chat33_core.http.transport_error` for an httpx error a plugin let through,
    without saying whether its request creates the post: POST, PUT and PATCH count as
    creating requests (a lost answer is an unknown outcome), others not."""
    try:
        method, what = exc.request.method, f"{exc.request.method} {exc.request.url.path}"
    except RuntimeError:  # an error raised without its request
        method, what = "", "a request"
    return transport_error(exc, platform=name, what=what, creates=method in CREATING_METHODS)


def settle_unknown(outcomes: Outcomes, claim: Claim, alog: AttemptLog,
                   platform: PlatformBase, ctx: PublishContext,
                   checkpoints: DurableCheckpoints, exc: UnknownOutcome) -> Outcome:
    """Mark the post unconfirmed (durably), then ask the platform whether it exists."""
    name = platform.display_name or platform.name
    # durable first: if this worker dies now, the next one confirms before posting
    checkpoints.mark(unconfirmed=True)
    alog("unknown_outcome", f"no answer from {name} after the post was sent "
         f"({exc.message}); asking {name} whether it exists")
    try:
        found = confirm(platform, ctx)
    except TransientError as again:
        return outcomes.retry(claim, alog, again, prefix="could not confirm yet: ")
    except PlatformError as again:
        message = (f"{name} did not answer when the post was sent and cannot tell whether "
                   f"it was published ({again.message}); check the {name} account "
                   f"{ctx.account.name!r} before posting it again")
        return outcomes.fail(claim, alog, message, final_checkpoint=False, posted=exc.posted)
    if found is not None:
        return outcomes.published(claim, alog, platform, found)
    checkpoints.mark(unconfirmed=None)
    return outcomes.retry(claim, alog, TransientError(
        f"{name} confirmed the post is not there after an unanswered request "
        f"({exc.message})", posted=exc.posted))


def confirm(platform: PlatformBase, ctx: PublishContext) -> PublishResult | None:
    """``platform.confirm``: the post's receipts if it is there, None if it is not; a
    failure that is not a platform error is an :class:`UnknownOutcome` (cannot tell)."""
    try:
        return plugin_call(platform.confirm, ctx)
    except (PlatformError, StoreUnavailable):
        raise
    except Exception as exc:
        raise UnknownOutcome(safe_text(exc)) from exc


def plugin_call(method: Callable[[PublishContext], _R], ctx: PublishContext) -> _R:
    """``method(ctx)``, a plugin's publish or confirm: a failure caused by an unavailable
    database (a checkpoint save, however the plugin wrapped it) comes out as the
    :class:`StoreUnavailable` it is, not as the platform error the plugin made of it."""
    try:
        return method(ctx)
    except StoreUnavailable:
        raise
    except Exception as exc:
        fault = behind(exc)
        if fault is None:
            raise
        raise StoreUnavailable(reason=fault.reason) from exc
