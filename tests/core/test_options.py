"""Declared platform options: one declaration checked by the core, in the OpenAPI
document's JSON Schema and in the README's tables."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chat33_core import options
from chat33_core.config import Settings
from chat33_core.errors import Issue, PluginError
from chat33_core.hookspecs import hookimpl
from chat33_core.models import Account, PostRequest
from chat33_core.options import Option
from chat33_core.platforms import Capabilities, PlatformBase, PostDraft
from chat33_core.plugins import PluginHost
from chat33_core.testing import validate_draft
from chat33_core.validation import validate_request

ROOT = Path(__file__).resolve().parents[2]


class Vidnet(PlatformBase):
    """Records what its ``validate`` is shown, to prove plugins see checked options only."""

    name = "vidnet"
    display_name = "Vidnet"
    capabilities = Capabilities(threads=False)
    options = (
        Option("privacy", "string", "Who sees it", choices=("public", "private"),
               required=True),
        Option("kids", "boolean", "Made for kids", default=False),
        Option("cover", "integer", "Cover frame, ms", minimum=0, maximum=10_000),
        Option("category", ("string", "integer"), "A category id"),
        Option("tags", "array", "Keywords", items=Option("tag", "string", "")),
        Option("poll", "object", "A poll", fields=(
            Option("options", "array", "choices", items=Option("o", "string", ""),
                   required=True),
            Option("minutes", "integer", "how long", minimum=5))),
    )
    seen: list[dict[str, Any]] = []

    def validate(self, draft: PostDraft, account: Account) -> list[Issue]:
        Vidnet.seen.append(dict(draft.platform_config.get("vidnet") or {}))
        return []


class Textnet(PlatformBase):
    name = "textnet"
    options = (Option("mood", "string", "A mood"),)


def host() -> PluginHost:
    class Plugin:
        @hookimpl
        def chat33_register_platforms(self, register: Callable[[type[PlatformBase]], None]
                                      ) -> None:
            register(Vidnet)
            register(Textnet)

    h = PluginHost(Settings.from_env({}))
    h.register(Plugin(), name="test")
    return h


HOST = host()
ACCOUNTS: dict[str, Account | None] = {
    "acc_v": Account(id="acc_v", org_id="o", platform="vidnet", name="v"),
    "acc_t": Account(id="acc_t", org_id="o", platform="textnet", name="t"),
}


def report(account_ids: list[str], config: Any) -> Any:
    request = PostRequest(account_ids=account_ids, text="hello", platform_config=config)
    return validate_request(request, accounts=ACCOUNTS, host=HOST, inspect_url=lambda u: None,
                            now=datetime.now(UTC), settings=Settings.from_env({}))


def found(rep: Any) -> dict[str, tuple[str, str]]:
    return {i.path: (i.code, i.message) for i in rep.errors()}


def test_types_values_ranges_and_unknown_keys_are_checked_by_the_core() -> None:
    Vidnet.seen.clear()
    rep = report(["acc_v"], {"vidnet": {
        "privacy": "friends", "kids": "no", "cover": -1, "category": 2.5, "tags": ["a", 3],
        "poll": {"options": ["a"], "minutes": 1, "colour": "red"}, "hdr": True}})
    assert found(rep) == {
        "platformConfig.vidnet.privacy": (
            "invalid_choice", "'friends' is not one of public, private"),
        "platformConfig.vidnet.kids": ("invalid_type", "must be true or false, got 'no'"),
        "platformConfig.vidnet.cover": ("out_of_range", "cover -1 is outside 0-10000"),
        "platformConfig.vidnet.category": (
            "invalid_type", "must be a string or a whole number, got 2.5"),
        "platformConfig.vidnet.tags[1]": ("invalid_type", "must be a string, got 3"),
        "platformConfig.vidnet.poll.minutes": (
            "out_of_range", "minutes must be 5 or more, got 1"),
        "platformConfig.vidnet.poll.colour": (
            "unknown_key", "unknown field 'colour' (fields: options, minutes)"),
        "platformConfig.vidnet.hdr": (
            "unknown_key", "unknown option 'hdr' for Vidnet (accepted: category, "
                           "cover, kids, poll, privacy, tags)"),
    }
    # the plugin never saw a value that failed its declaration
    assert Vidnet.seen == [{}]


def test_the_plugin_sees_the_options_that_passed() -> None:
    Vidnet.seen.clear()
    good = {"privacy": "private", "kids": True, "cover": 0, "category": "22", "tags": ["a"],
            "poll": {"options": ["a", "b"], "minutes": 60}}
    rep = report(["acc_v"], {"vidnet": {**good, "kids": 1}})
    assert list(found(rep)) == ["platformConfig.vidnet.kids"]
    assert Vidnet.seen == [{k: v for k, v in good.items() if k != "kids"}]
    assert report(["acc_v"], {"vidnet": good}).valid


def test_a_required_option_is_required_of_the_accounts_on_that_platform() -> None:
    rep = report(["acc_v", "acc_t"], None)
    assert found(rep) == {"platformConfig.vidnet.privacy": (
        "required", "vidnet: privacy is required by Vidnet: one of public, private")}
    by_account = {r.account_id: r.valid for r in rep.results}
    assert by_account == {"acc_v": False, "acc_t": True}
    # a nested required field too
    rep = report(["acc_v"], {"vidnet": {"privacy": "public", "poll": {"minutes": 10}}})
    assert list(found(rep)) == ["platformConfig.vidnet.poll.options"]


def test_an_object_for_a_platform_not_posted_to_is_checked_but_ignored() -> None:
    rep = report(["acc_t"], {"vidnet": {"kids": False}})
    # the object must still match its schema (the API document says privacy is required)
    assert list(found(rep)) == ["platformConfig.vidnet.privacy"]
    assert [w.path for w in rep.warnings()] == ["platformConfig.vidnet"]
    assert report(["acc_t"], {"vidnet": {"privacy": "public"}}).valid


def test_validate_draft_gives_what_the_core_gives() -> None:
    platform = HOST.platform("vidnet")
    draft = PostDraft(text="x", media_type=None, media=(),
                      platform_config={"vidnet": {"privacy": "secret"}})
    assert [(i.path, i.code) for i in validate_draft(platform, draft, ACCOUNTS["acc_v"])
            ] == [("platformConfig.vidnet.privacy", "invalid_choice")]
    empty = PostDraft(text="x", media_type=None, media=(), platform_config={})
    assert [i.code for i in validate_draft(platform, empty, ACCOUNTS["acc_v"])] == ["required"]


def test_json_schema_of_the_declarations() -> None:
    schema = options.object_schema(Vidnet.options)
    assert schema["additionalProperties"] is False and schema["required"] == ["privacy"]
    props = schema["properties"]
    assert props["privacy"] == {"type": "string", "description": "Who sees it",
                                "enum": ["public", "private"]}
    assert props["kids"] == {"type": "boolean", "description": "Made for kids",
                             "default": False}
    assert props["cover"]["minimum"] == 0 and props["cover"]["maximum"] == 10_000
    assert props["category"]["type"] == ["string", "integer"]
    assert props["tags"]["items"] == {"type": "string"}
    poll = props["poll"]
    assert poll["additionalProperties"] is False and poll["required"] == ["options"]
    assert poll["properties"]["minutes"] == {"type": "integer", "description": "how long",
                                             "minimum": 5}


@pytest.mark.parametrize(("declared", "message"), [
    ((Option("a", "string", ""), Option("a", "boolean", "")), "declares a more than once"),
    (("a",), "not an Option"),
    ((Option("a", "string", "", choices=("x",), default="y"),), "not among its choices"),
])
def test_broken_declarations_are_refused_when_registered(declared: Any, message: str) -> None:
    broken = type("Broken", (PlatformBase,), {"name": "broken", "options": declared})

    class Plugin:
        @hookimpl
        def chat33_register_platforms(self, register: Callable[[type[PlatformBase]], None]
                                      ) -> None:
            register(broken)

    with pytest.raises(PluginError, match=message):
        PluginHost(Settings.from_env({})).register(Plugin(), name="broken")


def test_an_unknown_type_name_is_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="option types must be among"):
        Option("a", "str", "")


def test_readme_tables_match_the_declarations() -> None:
    """The README's platformConfig section is generated from the installed plugins'
    declarations; rewrite it with the output of ``python -m chat33_core.options bluesky facebook
    instagram linkedin mastodon telegram threads tiktok x youtube`` when this fails."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- platform-options:begin -->\n(.*?)\n<!-- platform-options:end -->",
                      readme, re.S)
    assert match, "README.md has no platform-options section"
    h = PluginHost(Settings.from_env({}))
    h.load_entry_points({"CHAT33_LOAD_PLUGINS": "instagram,facebook,tiktok,youtube,x,bluesky,"
                                                     "mastodon,telegram,threads,linkedin"})
    assert match.group(1) == options.readme_section(h.platforms)
