"""The checks every platform plugin must pass (:class:`PlatformContract`), and the
helpers that drive a plugin's side of connecting an account by OAuth 2."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from .. import options
from ..config import Settings
from ..errors import Issue, NotSupported
from ..models import Account, Credentials
from ..oauth import (
    AuthorizationRequest,
    OAuthClient,
    OAuthContext,
    new_code_verifier,
    new_state,
)
from ..platforms import Capabilities, DeleteContext, Limits, PlatformBase, PostDraft
from ..sandbox import serve
from ..sandbox_oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


class PlatformContract:
    """Checks every platform plugin must pass. Subclass in a plugin's tests::

        class TestContract(PlatformContract):
            platform_class = InstagramPlatform
    """

    platform_class: ClassVar[type[PlatformBase]]

    def make(self) -> PlatformBase:
        return self.platform_class(Settings.from_env({}))

    def test_name_is_a_lowercase_identifier(self) -> None:
        name = self.platform_class.name
        assert name and name == name.lower() and name.replace("_", "").isalnum()

    def test_entry_point_is_discovered_from_installed_metadata(self) -> None:
        from importlib.metadata import entry_points

        names = {ep.name: ep for ep in entry_points(group="chat33.platforms")}
        assert self.platform_class.name in names
        from ..plugins import PluginHost

        host = PluginHost(Settings.from_env({}))
        host.load_entry_points({"CHAT33_LOAD_PLUGINS": self.platform_class.name})
        assert type(host.platform(self.platform_class.name)) is self.platform_class

    def test_declares_capabilities_and_limits(self) -> None:
        assert isinstance(self.platform_class.capabilities, Capabilities)
        assert isinstance(self.platform_class.limits, Limits)
        assert self.platform_class.limits.caption_length > 0
        assert self.platform_class.default_api_base.startswith("https://")

    def test_options_are_declared_with_descriptions(self) -> None:
        """Each option is an Option with a description (the API document and the README
        show it) and its JSON Schema can be built."""
        declared = self.platform_class.options
        assert isinstance(declared, tuple)
        for option in declared:
            assert isinstance(option, options.Option), option
            assert option.description.strip(), f"{option.name} has no description"
        schema = options.object_schema(declared)
        assert set(schema["properties"]) == {o.name for o in declared}

    def test_api_base_follows_environment(self) -> None:
        env = {f"CHAT33_{self.platform_class.name.upper()}_API_BASE": "http://127.0.0.1:9/"}
        assert self.platform_class(Settings.from_env(env)).api_base() == "http://127.0.0.1:9"

    def test_validate_returns_issues_not_exceptions(self) -> None:
        platform = self.make()
        draft = PostDraft(text="x" * 100_000, media_type=None, media=(), platform_config={})
        account = Account(id="chan_1", org_id="org_1", platform=platform.name, name="c")
        issues = platform.validate(draft, account)
        assert isinstance(issues, list) and all(isinstance(i, Issue) for i in issues)
        assert any(i.severity == "error" for i in issues), "100,000 characters must be refused"

    def test_sandbox_is_a_wsgi_app_with_the_control_api(self) -> None:
        platform = self.make()
        app = platform.sandbox()
        assert app is not None
        with serve(app) as url:
            state = httpx.get(f"{url}/_sandbox/state", timeout=5)
            assert state.status_code == 200 and isinstance(state.json(), dict)
            assert httpx.post(f"{url}/_sandbox/reset", timeout=5).status_code == 200

    def test_delete_matches_declared_capability(self) -> None:
        platform = self.make()
        if platform.capabilities.delete:
            assert type(platform).delete is not PlatformBase.delete
        else:
            ctx = DeleteContext(
                account=Account(id="c", org_id="o", platform=platform.name, name="c"),
                credentials=Credentials(access_token="t"), http=httpx.Client(),
                settings=platform.settings, external_ids=["1"],
            )
            try:
                platform.delete(ctx)
            except NotSupported as exc:
                assert platform.name in str(exc).lower() or exc.message
            else:
                raise AssertionError("delete must raise NotSupported when not supported")

    def test_connects_an_account_by_oauth_against_its_sandbox(self) -> None:
        """A plugin that connects by OAuth does it whole against its own sandbox: the
        authorization URL on ``CHAT33_<NAME>_API_BASE`` with the state and redirect URI,
        the code back with the state, the exchange, the long-lived grant, and targets
        that can each publish (with credentials of their own or the grant's). Without
        OAuth, the hooks say ``NotSupported``."""
        platform = self.make()
        if not platform.supports_connect:
            with httpx.Client() as http:
                request = authorization_request(oauth_context(platform, http))
                try:
                    platform.authorization_url(request)
                except NotSupported:
                    return
            raise AssertionError("authorization_url must raise NotSupported without OAuth")
        for hook in ("exchange_code", "list_targets"):
            assert (getattr(self.platform_class, hook)
                    is not getattr(PlatformBase, hook)), f"{hook} missing"
        app = platform.sandbox()
        assert app is not None
        with serve(app) as url, httpx.Client(timeout=10) as http:
            env = {f"CHAT33_{platform.name.upper()}_API_BASE": url}
            platform = self.platform_class(Settings.from_env(env))
            ctx = oauth_context(platform, http)
            request = authorization_request(ctx)
            authorize = platform.authorization_url(request)
            assert authorize.startswith(url + "/"), authorize
            assert request.state in authorize and "redirect_uri=" in authorize
            back = follow_authorization(http, authorize)
            assert back.get("state") == request.state and back.get("code"), back
            grant = platform.long_lived(platform.exchange_code(back["code"], request, ctx),
                                        ctx)
            targets = platform.list_targets(grant, ctx)
            assert targets, "the sandbox's default user must have something to connect"
            for target in targets:
                assert target.external_id and target.name
                # a target without credentials of its own publishes with the grant's
                assert (target.credentials or grant.credentials).access_token


# --- connecting accounts (OAuth 2) ------------------------------------------------------

#: the redirect URI the OAuth tests use: ``CHAT33_PUBLIC_BASE_URL`` of a server that is
#: never called (the test reads the redirect instead of following it)
TEST_PUBLIC_BASE = "http://127.0.0.1:9"


def oauth_context(platform: PlatformBase, http: httpx.Client, *,
                  client_secret: str = SANDBOX_CLIENT_SECRET,
                  redirect_uri: str | None = None) -> OAuthContext:
    """An ``OAuthContext`` for ``platform`` with the sandbox's registered app and the
    redirect URI ``{TEST_PUBLIC_BASE}/api/v1/oauth/<name>/callback`` (either can be
    replaced, to see the platform refuse them)."""
    client = OAuthClient(SANDBOX_CLIENT_ID, client_secret, redirect_uri or
                         f"{TEST_PUBLIC_BASE}/api/v1/oauth/{platform.name}/callback")
    return OAuthContext(client=client, http=http, settings=platform.settings)


def authorization_request(ctx: OAuthContext,
                          force_consent: bool = False) -> AuthorizationRequest:
    """A fresh ``AuthorizationRequest`` (new state and PKCE verifier) for ``ctx``."""
    return AuthorizationRequest(client=ctx.client, state=new_state(),
                                code_verifier=new_code_verifier(),
                                force_consent=force_consent)


def follow_authorization(http: httpx.Client, url: str) -> dict[str, str]:
    """Open an authorization URL as a browser would and read where the platform sends it
    back: the callback's query parameters (``code``, ``state``, ``error``...), plus
    ``"#"``, the fragment, when there is one. Anything but a redirect is an
    ``AssertionError`` carrying the page."""
    response = http.get(url, follow_redirects=False)
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    location = urlsplit(response.headers["location"])
    params = dict(parse_qsl(location.query, keep_blank_values=True))
    if location.fragment:
        params["#"] = location.fragment
    return params
