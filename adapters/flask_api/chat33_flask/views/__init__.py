"""One blueprint per resource, all mounted under ``/api/v1``."""

from __future__ import annotations

from flask import Blueprint

from . import accounts, api_keys, auth, media, posts, webhooks

BLUEPRINTS: tuple[Blueprint, ...] = (accounts.bp, posts.bp, media.bp, api_keys.bp, auth.bp,
                                     webhooks.bp)

__all__ = ["BLUEPRINTS"]
