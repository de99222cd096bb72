"""The wire form of validation reports and of deleting a post, as the converter writes
it (the API answers exactly these keys, in this order)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from chat33_core.errors import Issue
from chat33_core.models import AccountResult, DeleteOutcome, MediaType, ValidationReport
from chat33_core.serialization import converter

TOO_LONG = Issue("text", "text is 300 characters", "too_long")
NO_MEDIA = Issue("mediaUrls", "no media", "warning", severity="warning")


def test_an_account_result_lists_its_issues_with_their_codes() -> None:
    result = AccountResult("acc_1", "x", errors=[TOO_LONG], warnings=[NO_MEDIA])
    data = converter.unstructure(result)
    assert json.dumps(data) == json.dumps({
        "accountId": "acc_1", "platform": "x", "valid": False,
        "errors": [{"path": "text", "code": "too_long", "message": "text is 300 characters"}],
        "warnings": [{"path": "mediaUrls", "code": "warning", "message": "no media"}]})


def test_a_report_answers_valid_first_and_keeps_what_creation_uses_to_itself() -> None:
    report = ValidationReport(
        results=[AccountResult("acc_1", None)],
        media=[{"url": "https://e.com/a.jpg", "path": "mediaUrls[0]", "valid": True}],
        request_warnings=[NO_MEDIA], scheduled_at=datetime(2026, 5, 1, tzinfo=UTC),
        media_types=[MediaType.IMAGE])
    data = converter.unstructure(report)
    assert list(data) == ["valid", "errors", "warnings", "results", "media"]
    assert data["valid"] is True and data["errors"] == []
    assert data["warnings"] == [{"path": "mediaUrls", "code": "warning", "message": "no media"}]
    assert data["results"] == [{"accountId": "acc_1", "platform": None, "valid": True,
                                "errors": [], "warnings": []}]
    assert data["media"] == report.media


def test_a_report_with_request_errors_is_invalid_on_the_wire() -> None:
    data = converter.unstructure(ValidationReport(results=[], request_errors=[TOO_LONG]))
    assert data["valid"] is False and data["errors"][0]["code"] == "too_long"


def test_a_deletion_names_the_platform_only_when_it_was_asked() -> None:
    assert converter.unstructure(DeleteOutcome(id="post_1", deleted=True, status=None)) == {
        "id": "post_1", "deleted": True, "status": None}
    asked = converter.unstructure(DeleteOutcome(
        id="post_1", deleted=False, status="CANCELLED", platform_deleted=True))
    assert json.dumps(asked) == json.dumps({
        "id": "post_1", "deleted": False, "status": "CANCELLED", "platformDeleted": True,
        "platformError": None})
    failed = converter.unstructure(DeleteOutcome(
        id="post_1", deleted=False, status="CANCELLED", platform_deleted=False,
        platform_error="gone"))
    assert failed["platformDeleted"] is False and failed["platformError"] == "gone"
