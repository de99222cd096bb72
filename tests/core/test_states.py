"""The post life cycle: unit rules, and a hypothesis state machine that drives the real
service and store against a simple model."""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import pytest
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from chat33_core import states
from chat33_core.errors import Conflict, InvalidTransition, NotFound
from chat33_core.models import Organization, PostRequest, PostStatus, User, new_id
from chat33_core.service import Chat33, Principal
from chat33_core.states import Actor

S = PostStatus


@pytest.mark.parametrize(("current", "target"), [
    (S.DRAFT, S.QUEUED), (S.QUEUED, S.DRAFT), (S.QUEUED, S.CANCELLED), (S.DRAFT, S.CANCELLED),
    (S.PUBLISHED, S.CANCELLED), (S.FAILED, S.CANCELLED), (S.FAILED, S.QUEUED),
])
def test_user_moves(current: PostStatus, target: PostStatus) -> None:
    assert states.transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [
    (S.QUEUED, S.PUBLISHING), (S.PUBLISHING, S.PUBLISHED), (S.PUBLISHING, S.FAILED),
    (S.PUBLISHING, S.QUEUED),
])
def test_worker_moves(current: PostStatus, target: PostStatus) -> None:
    assert states.transition(current, target, Actor.WORKER) is target
    with pytest.raises(InvalidTransition):
        states.transition(current, target, Actor.USER)


@pytest.mark.parametrize("target", list(S))
def test_cancelled_is_final(target: PostStatus) -> None:
    for actor in Actor:
        assert not states.can(S.CANCELLED, target, actor)


@pytest.mark.parametrize("current", [S.PUBLISHING, S.PUBLISHED, S.FAILED, S.CANCELLED])
def test_only_draft_and_queued_are_editable(current: PostStatus) -> None:
    with pytest.raises(InvalidTransition, match="only DRAFT and QUEUED"):
        states.check_editable(current)


def test_delete_actions_follow_the_api_doc() -> None:
    assert states.delete_action(S.DRAFT) is states.DeleteAction.HARD_DELETE
    for status in (S.QUEUED, S.PUBLISHED, S.FAILED):
        assert states.delete_action(status) is states.DeleteAction.CANCEL
    with pytest.raises(InvalidTransition, match="being published") as info:
        states.delete_action(S.PUBLISHING)
    assert info.value.code == "CONFLICT" and info.value.http_status == 409


def test_every_pair_is_decided_by_the_table() -> None:
    for current, target, actor in itertools.product(S, S, Actor):
        if states.can(current, target, actor):
            assert states.transition(current, target, actor) is target
        else:
            with pytest.raises(InvalidTransition):
                states.transition(current, target, actor)


# --- the state machine, against the real service and store ---------------------------------

_counter = itertools.count()


class PostLifecycle(RuleBasedStateMachine):
    """The model is a dict id → status (None once hard-deleted); the system is the real
    service on a real SQLite store, with the worker's moves done through the store."""

    posts = Bundle("posts")

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, PostStatus | None] = {}

    @initialize()
    def setup(self) -> None:
        # one migrated database for the run; each example gets an organization of its own
        self.core: Chat33 = self._core  # type: ignore[attr-defined]
        n = next(_counter)
        org = self.core.store.add_org(Organization.new(f"SM {n}"))
        user = self.core.store.add_user(User(id=new_id("user"), org_id=org.id,
                                             email=f"sm{n}@example.com", password_hash="x"))
        account = self.core.add_account(user.org_id, "x", "X")
        self.principal = Principal(org_id=user.org_id, user_id=user.id,
                                   scopes=frozenset({"posts:write"}), via="key")
        self.account_id = account.id

    @rule(target=posts, text=st.text(min_size=1, max_size=40).filter(str.strip))
    def create(self, text: str) -> str:
        created = self.core.create_posts(self.principal, PostRequest(
            account_ids=[self.account_id], text=text)).posts
        self.model[created[0].id] = S.QUEUED
        return created[0].id

    @rule(post=posts, target_status=st.sampled_from([S.DRAFT, S.QUEUED, S.CANCELLED]))
    def patch_status(self, post: str, target_status: PostStatus) -> None:
        expected = self.model[post]
        try:
            got = self.core.update_post(self.principal, post, {"status": target_status})
        except NotFound:
            assert expected is None
            return
        except InvalidTransition:
            assert expected is not None
            assert expected not in states.EDITABLE or not states.can(expected, target_status)
            return
        assert expected in states.EDITABLE and states.can(expected, target_status)
        assert got.status is target_status
        self.model[post] = target_status

    @rule(post=posts, text=st.text(min_size=1, max_size=20).filter(str.strip))
    def edit_text(self, post: str, text: str) -> None:
        expected = self.model[post]
        try:
            got = self.core.update_post(self.principal, post, {"text": text})
        except NotFound:
            assert expected is None
            return
        except InvalidTransition:
            assert expected not in states.EDITABLE
            return
        assert expected in states.EDITABLE and got.text == text

    @rule(post=posts)
    def delete(self, post: str) -> None:
        expected = self.model[post]
        try:
            outcome = self.core.delete_post(self.principal.org_id, post)
        except NotFound:
            assert expected is None
            return
        except InvalidTransition:
            assert expected in (S.PUBLISHING, S.CANCELLED)
            return
        if expected is S.DRAFT:
            assert outcome.deleted
            self.model[post] = None
        else:
            assert expected in (S.QUEUED, S.PUBLISHED, S.FAILED)
            assert outcome.status == "CANCELLED"
            self.model[post] = S.CANCELLED

    @rule(post=posts, outcome=st.sampled_from([S.PUBLISHED, S.FAILED, S.QUEUED, None]))
    def worker(self, post: str, outcome: PostStatus | None) -> None:
        """The worker claims a QUEUED post, then finishes it (or leaves it PUBLISHING)."""
        expected = self.model[post]
        if expected is not S.QUEUED:
            if expected is not None:
                stored = self.core.store.get_post(post)
                assert not states.can(stored.status, S.PUBLISHING, Actor.WORKER)
            return
        stored = self.core.store.get_post(post)
        claimed = self.core.store.save_post(
            attrs.evolve(stored, status=states.transition(stored.status, S.PUBLISHING,
                                                          Actor.WORKER)),
            expect_status=S.QUEUED)
        self.model[post] = S.PUBLISHING
        if outcome is not None:
            self.core.store.save_post(
                attrs.evolve(claimed, status=states.transition(S.PUBLISHING, outcome,
                                                               Actor.WORKER)),
                expect_status=S.PUBLISHING)
            self.model[post] = outcome

    @rule(post=posts)
    def stale_writer_is_refused(self, post: str) -> None:
        """A write that expects an old status never lands."""
        expected = self.model[post]
        if expected is None:
            return
        stale = next(s for s in S if s is not expected)
        stored = self.core.store.get_post(post)
        with pytest.raises(Conflict):
            self.core.store.save_post(attrs.evolve(stored, text="stale"), expect_status=stale)

    @invariant()
    def store_matches_model(self) -> None:
        if not hasattr(self, "core"):
            return
        for post_id, status in self.model.items():
            if status is None:
                with pytest.raises(NotFound):
                    self.core.store.get_post(post_id)
            else:
                assert self.core.store.get_post(post_id).status is status


def test_post_lifecycle_state_machine(tmp_path: Path, settings_for) -> None:  # type: ignore[no-untyped-def]
    import os

    core = Chat33(settings_for(f"sqlite:///{tmp_path / 'sm.db'}"))
    core.store.migrate()
    PostLifecycle._core = core  # type: ignore[attr-defined]

    examples = 150 if os.environ.get("CI") else 60
    run_state_machine_as_test(PostLifecycle, settings=hyp_settings(
        max_examples=examples, stateful_step_count=12, deadline=None))


@pytest.mark.parametrize("current", list(S))
def test_only_a_failed_post_can_be_retried(current: PostStatus) -> None:
    if current is S.FAILED:
        assert states.retry(current) is S.QUEUED
        return
    with pytest.raises(InvalidTransition, match="only FAILED posts can be retried"):
        states.retry(current)
