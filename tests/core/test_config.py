"""Settings: paths made absolute once, against the directory the process started in."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat33_core.config import DEFAULT_PUBLIC_BASE_URL, Settings


def test_relative_paths_are_resolved_against_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"CHAT33_MEDIA_DIR": "media/here",
                                  "CHAT33_DATABASE_URL": "sqlite:///data/chat33.db"})
    monkeypatch.chdir("/")  # later changes of directory do not move them
    assert settings.media_dir == tmp_path / "media" / "here"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'chat33.db'}"
    defaults = Settings.from_env({}).with_()  # evolve keeps absolute paths absolute
    assert defaults.media_dir == Path("/chat33-media")
    assert defaults.database_url == "sqlite:////chat33.db"


def test_other_database_urls_are_kept_as_given() -> None:
    for url in ("sqlite://", "sqlite:///:memory:",
                "postgresql+psycopg://u@127.0.0.1/db?options=-csearch_path%3Dx"):
        assert Settings.from_env({"CHAT33_DATABASE_URL": url}).database_url == url


def test_an_unset_public_base_url_is_none_and_media_urls_use_the_default() -> None:
    unset = Settings.from_env({})
    assert unset.public_base_url is None
    assert unset.media_base_url == DEFAULT_PUBLIC_BASE_URL
    given = Settings.from_env({"CHAT33_PUBLIC_BASE_URL": "https://media.example.com/"})
    assert given.media_base_url == "https://media.example.com"
