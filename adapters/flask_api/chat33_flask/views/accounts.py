"""``/accounts``: the organization's connected channels."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from chat33_core.service import Principal

from ..routing import Param, core, query, route
from ..schemas import account_json

bp = Blueprint("chat33_accounts", __name__)


@route(bp, "GET", "/accounts", summary="List connected accounts", tag="Accounts",
       description="Returns all active social media channels connected to your organization.",
       scope="accounts:read",
       params=[Param("platform", "platform", "Filter by platform")],
       responses={200: ("List of accounts", {"type": "object", "required": ["items"],
                                             "properties": {"items": {
                                                 "type": "array",
                                                 "items": {"$ref": "Account"}}}})},
       errors=[400])
def list_accounts(principal: Principal) -> Any:
    args = query()
    items = core().list_accounts(principal.org_id, platform=args["platform"])
    return {"items": [account_json(a) for a in items]}
