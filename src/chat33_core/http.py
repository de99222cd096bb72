"""The plugin kit's rule for requests that got no answer.

A platform call can fail before the platform heard anything (the connection was never
made) or after (the request went out and the answer was lost: a read timeout, a dropped
connection). Before, nothing happened: :class:`~chat33_core.errors.TransientError`, retry.
After, a request that *creates* the post may have created it:
:class:`~chat33_core.errors.UnknownOutcome`, so the worker asks ``confirm`` instead of
sending it again (which could post twice). Any other request is safe to repeat.

Every plugin sends its platform calls through :func:`send` (or :func:`reaching` around
a call it builds itself), so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from .errors import PlatformError, TransientError, UnknownOutcome

#: failures raised before a byte of the request left this process: the platform cannot
#: have acted on them
NOT_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError,
    httpx.UnsupportedProtocol)
#: the ``platform_code`` of every error made here
NETWORK = "network"


def transport_error(exc: httpx.RequestError, *, platform: str, what: str, creates: bool,
                    posted: Sequence[Any] = ()) -> PlatformError:
    """The chat33 error for ``exc``, a request to ``platform`` (its display name) that got
    no answer; ``what`` names the call for the message (``"media_publish"``), ``posted``
    the receipts of thread items already on the platform."""
    name = type(exc).__name__
    if isinstance(exc, NOT_SENT):
        return TransientError(f"{what}: could not reach {platform} ({name}: {exc})",
                              platform_code=NETWORK, posted=posted)
    if creates:
        return UnknownOutcome(f"{what}: no answer from {platform} ({name}); the post may or "
                              "may not exist", platform_code=NETWORK, posted=posted)
    return TransientError(f"{what}: {platform} did not answer ({name}: {exc})",
                          platform_code=NETWORK, posted=posted)


@contextmanager
def reaching(platform: str, what: str, *, creates: bool,
             posted: Sequence[Any] = ()) -> Iterator[None]:
    """Map a request error raised inside the block with :func:`transport_error`."""
    try:
        yield
    except httpx.RequestError as exc:
        raise transport_error(exc, platform=platform, what=what, creates=creates,
                              posted=posted) from exc


def send(client: httpx.Client, method: str, url: str, *, platform: str, what: str,
         creates: bool, **kwargs: Any) -> httpx.Response:
    """``client.request(method, url, **kwargs)``; a request that got no answer raises the
    error :func:`transport_error` chooses. Every answer, whatever its status, is
    returned: reading it is the platform's business."""
    with reaching(platform, what, creates=creates):
        return client.request(method, url, **kwargs)
