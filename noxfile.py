"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``demo``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
PLUGINS = [f"plugins/chat33_{p}"
           for p in ("instagram", "facebook", "tiktok", "youtube", "x", "bluesky",
                     "telegram", "mastodon", "threads",
                     "linkedin")]
EXAMPLE = "examples/chat33_example"  # the copyable plugin of docs/plugins.md
EDITABLE = [arg for path in (".[test]", *PLUGINS, "adapters/flask_api", EXAMPLE)
            for arg in ("-e", path)]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (PostgreSQL half when CHAT33_TEST_POSTGRES_URL is set)."""
    session.install(*EDITABLE)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over every distribution and the tests."""
    session.install("ruff")
    session.run("ruff", "check", "src", "plugins", "adapters", "tests", "bench", "examples")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on chat33_core, the platform plugins, the Flask adapter and the
    example plugin."""
    session.install("mypy", *EDITABLE)
    session.run("mypy")
    session.run("mypy", "plugins", "adapters", "examples")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks; each prints a table of ratios against a baseline of the same run."""
    session.install(*EDITABLE)
    for name in ("media", "api", "api_cpu", "scheduler"):
        session.run("python", f"bench/{name}.py")


@nox.session
def demo(session: nox.Session) -> None:
    """chat33 demo: the whole job on SQLite and the platform sandboxes."""
    session.install(*EDITABLE)
    session.run("chat33", "demo")
