"""One blueprint per resource, all mounted under ``/api/v1``."""

from __future__ import annotations

from flask import Blueprint

from . import accounts, api_keys, auth, connect, media, posts, webhooks

BLUEPRINTS: tuple[Blueprint, ...] = (accounts.bp, connect.bp, posts.bp, media.bp,
                                     api_keys.bp, auth.bp, webhooks.bp)

__all__ = ["BLUEPRINTS"]
