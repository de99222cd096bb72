"""Browser fixtures: the system's Chromium driven by Playwright, and the whole stack.

No browser is downloaded: Playwright launches the Chromium of the operating system's
packages (``apt-get install chromium``; ``.ci/run`` installs it). Where none can be had
the browser tests skip saying so; in CI (``CI=true``) that is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .stack import Stack, chromium, web_stack


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium()
    if path is None:
        reason = ("no Chromium on this machine (apt-get install chromium): the web app's "
                  "browser tests need the operating system's Chromium")
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run them")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("webapp")
    with web_stack(folder) as running:
        yield running


@pytest.fixture(autouse=True, scope="session")
def _hash_each_password_once() -> Iterator[None]:
    """Argon2 is slow on purpose; the tests make many users with one password, so each
    distinct password is hashed (for real) once per session."""
    from functools import cache

    import chat33_core.identity as identity

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(identity, "hash_password", cache(identity.hash_password))
        yield
