"""Persistence on SQLite and PostgreSQL: the only package that runs SQL.

:class:`Store` (see :mod:`.core`) is made of one part per table or aggregate, each the
owner of its statements; the rest of chat33 calls its methods.
"""

from __future__ import annotations

from .core import Store, human_period, make_engine

__all__ = ["Store", "human_period", "make_engine"]
