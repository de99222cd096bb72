"""The hooks a chat33 plugin may implement.

Hooks are for discovery and for cross-cutting concerns. The per-platform work (validate,
publish, delete, refresh credentials) lives on the :class:`~chat33_core.platforms.PlatformBase`
subclass a plugin registers, not in hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .errors import Issue
    from .models import Account, Post
    from .platforms import PlatformBase, PostDraft

PROJECT = "chat33"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def chat33_register_platforms(register: Callable[[type[PlatformBase]], None]) -> None:
    """Register platform classes.

    :param register: call it once per platform class. The class's ``name`` must be unique
        among loaded plugins (a clash is an error, not a silent override) and should
        equal the plugin's entry-point name.

    Return value ignored.
    """


@hookspec
def chat33_validate_post(
    draft: PostDraft, account: Account, platform: PlatformBase
) -> list[Issue] | None:
    """Add validation rules of your own to every post, on top of the platform's.

    :param draft: the post as validation sees it (inspected media, no URLs).
    :param account: the target channel.
    :param platform: the channel's platform object.

    Return a list of :class:`~chat33_core.errors.Issue` (may be empty) or ``None``.
    Every implementation is called; the issues are concatenated.
    """


@hookspec
def chat33_post_published(post: Post) -> None:
    """Observer: ``post`` has just become PUBLISHED (its receipt is on it).

    :param post: the post as stored after the change.

    Return value ignored. Exceptions are logged and do not affect the post.
    """


@hookspec
def chat33_post_failed(post: Post) -> None:
    """Observer: ``post`` has just become FAILED (``error_message`` says why).

    :param post: the post as stored after the change.

    Return value ignored. Exceptions are logged and do not affect the post.
    """


def hook_names() -> list[str]:
    return sorted(n for n, v in globals().items() if n.startswith("chat33_") and callable(v))


__all__ = ["PROJECT", "Any", "hook_names", "hookimpl", "hookspec"]
