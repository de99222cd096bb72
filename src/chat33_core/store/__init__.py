"""Persistence on SQLite and PostgreSQL: the only package that runs SQL.

:class:`Store` (see :mod:`.core`) is made of one part per table or aggregate, each the
owner of its statements; the rest of chat33 calls its methods.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection as Transaction

from .core import Store, human_period, make_engine

#: ``Transaction``: an open write transaction of :meth:`Store.begin`, for the methods
#: that take ``conn=`` (callers hold it, never use it themselves)
__all__ = ["Store", "Transaction", "human_period", "make_engine"]
