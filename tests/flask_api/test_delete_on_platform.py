"""``DELETE /posts/{id}?fromPlatform=true`` deletes the post on X (its sandbox, real HTTP)."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
from chat33_x.sandbox import XSandbox

from chat33_core.models import Credentials, PostStatus
from chat33_core.sandbox import serve

from .conftest import Api, make_app, make_core, make_org


def test_delete_from_platform_deletes_the_published_post_on_x(db_url: str,
                                                              settings_for: Any) -> None:
    with serve(XSandbox()) as x_base:
        core = make_core(settings_for(db_url, CHAT33_X_API_BASE=x_base))
        app = make_app(core)
        api = Api(app=app, core=core, client=app.test_client(), org=make_org(core, "Acme"),
                  other=make_org(core, "Rival"))
        account = core.add_account(api.org.id, "x", "Acme on the sandbox",
                                   credentials=Credentials(access_token="sandbox-token"))
        bearer = {"Authorization": "Bearer sandbox-token"}
        tweet = httpx.post(f"{x_base}/2/tweets", json={"text": "posted earlier"},
                           headers=bearer).json()["data"]["id"]
        post_id = api.create(accountIds=[account.id], text="posted earlier")["posts"][0]["id"]
        stored = core.store.get_post(post_id)
        core.store.save_post(attrs.evolve(stored, status=PostStatus.PUBLISHED,
                                          external_post_id=tweet))

        response = api.delete(f"/posts/{post_id}?fromPlatform=true")

        assert response.status_code == 200
        assert response.get_json() == {"id": post_id, "deleted": False, "status": "CANCELLED",
                                       "platformDeleted": True, "platformError": None}
        assert httpx.delete(f"{x_base}/2/tweets/{tweet}", headers=bearer).status_code == 404
        assert [e["event"] for e in api.get(f"/posts/{post_id}/logs").get_json()["logs"]
                ][-1] == "cancelled"
        core.store.dispose()
