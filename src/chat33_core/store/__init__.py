"""Persistence: one implementation on SQLAlchemy Core for SQLite and PostgreSQL."""

from __future__ import annotations

from .core import Store, human_period, make_engine

__all__ = ["Store", "human_period", "make_engine"]
