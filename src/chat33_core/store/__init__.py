"""Persistence: one implementation on SQLAlchemy Core for SQLite and PostgreSQL."""

from __future__ import annotations

from .core import Store, make_engine

__all__ = ["Store", "make_engine"]
