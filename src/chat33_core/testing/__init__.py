"""Test helpers for chat33 and for platform plugin authors (``chat33_core.testing``;
docs/plugins.md, "Testing your plugin").

* media makers that write real files (:func:`make_image`, :func:`make_video`) and
  :func:`serve_directory`, which serves them over HTTP on loopback as our media server
  does (:mod:`.media`);
* :func:`publish_context` — a ready :class:`~chat33_core.platforms.PublishContext`;
  :func:`validate_draft` — what validation says of a draft for one platform: its
  declared options checked by the core, then its ``validate``; :class:`SandboxClient` —
  a served sandbox's control calls and publish contexts (:mod:`.contexts`);
* :class:`CrashingCheckpoints`, :class:`WorkerCrash`, :class:`RecordingSleep` — a worker
  that dies at an exact step, and a ``ctx.sleep`` that records its waits;
  :func:`worker_world` — chat33's own worker publishing to a plugin's sandbox
  (:mod:`.worker`);
* :class:`PlatformContract` — the checks every platform plugin must pass. Subclass it
  in your plugin's tests and set ``platform_class``; and the OAuth helpers
  (:mod:`.contract`).

Video making needs the ``av`` package (in the ``test`` extra).
"""

from __future__ import annotations

from .contexts import (
    SandboxClient,
    publish_context,
    sandbox_env,
    thread_items,
    validate_draft,
)
from .contract import (
    TEST_PUBLIC_BASE,
    PlatformContract,
    authorization_request,
    follow_authorization,
    oauth_context,
)
from .media import (
    CORRUPT_JPEGS,
    make_corrupt_jpeg,
    make_gif,
    make_image,
    make_sparse_file,
    make_video,
    media_file,
    serve_directory,
)
from .worker import CrashingCheckpoints, RecordingSleep, WorkerCrash, WorkerWorld, worker_world

__all__ = [
    "CORRUPT_JPEGS",
    "TEST_PUBLIC_BASE",
    "CrashingCheckpoints",
    "PlatformContract",
    "RecordingSleep",
    "SandboxClient",
    "WorkerCrash",
    "WorkerWorld",
    "authorization_request",
    "follow_authorization",
    "make_corrupt_jpeg",
    "make_gif",
    "make_image",
    "make_sparse_file",
    "make_video",
    "media_file",
    "oauth_context",
    "publish_context",
    "sandbox_env",
    "serve_directory",
    "thread_items",
    "validate_draft",
    "worker_world",
]
