"""Scheduling and publishing: the queue (claims with leases), the publisher (one
attempt through a platform plugin), per-channel daily caps, and the worker loop.

Run it with ``chat33 worker`` or embed it::

    from chat33_core.scheduling import Worker
    Worker(Chat33(settings), concurrency=8).run()
"""

from __future__ import annotations

from .caps import CapDecision, check_cap
from .outcomes import Outcome
from .publisher import Publisher
from .queue import Claim, LeaseLost, Queue
from .worker import Worker

__all__ = ["CapDecision", "Claim", "LeaseLost", "Outcome", "Publisher", "Queue", "Worker",
           "check_cap"]
