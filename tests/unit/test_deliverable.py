"""The Deliverable aggregate and the application's use cases on the in-memory store."""

import pytest

from domain.application import Signoff
from domain.commands import (
    Decide,
    FireDeadline,
    Reassign,
    SubmitDeliverable,
    SubmitRevision,
    Withdraw,
)
from domain.errors import (
    AlreadyDecided,
    ChainFinished,
    Conflict,
    Forbidden,
    Invalid,
    NotEligible,
    SelfApproval,
    StageClosed,
    StaleRevision,
)
from tests.builders import MEMBERS, make_policy, make_project, revision


@pytest.fixture
def app():
    return Signoff(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def full(app, view):
    """Commands answer the chain's view; tests read the whole recorded state."""
    return app.get_deliverable(view.id)


def submit(app, spec=None, escalation_path=None, did="00000000-0000-0000-0000-000000000001"):
    project_id = make_project(app, escalation_path)
    return full(app, app.submit_deliverable(SubmitDeliverable(deliverable_id=did, project_id=project_id,
                                                              title="Homepage mockups", actor="alice",
                                                              policy=make_policy(app, spec), revision=revision(),
                                                              command_id="c0")))


def decide(app, state, actor, verdict="approve", rev=1, cmd=None, comment="because"):
    return full(app, app.change_deliverable(Decide(deliverable_id=state.id, actor=actor, verdict=verdict,
                                                   comment=comment, revision=rev,
                                                   command_id=cmd or f"{actor}-{verdict}-{rev}-{len(state.decisions)}")))


def test_refused_decisions_record_nothing(app):
    state = submit(app)
    version = state.version
    for actor, error in [("alice", SelfApproval), ("carol", NotEligible), ("zoe", NotEligible)]:
        with pytest.raises(error):
            decide(app, state, actor)
    with pytest.raises(StaleRevision):
        decide(app, state, "bob", rev=2)
    with pytest.raises(Invalid):
        decide(app, state, "bob", "reject", comment=" ")
    assert app.get_deliverable(state.id).version == version


def test_same_command_twice_records_once(app):
    state = submit(app)
    once = full(app, app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="",
                                                   revision=1, command_id="same-id")))
    twice = full(app, app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="",
                                                    revision=1, command_id="same-id")))
    assert once.version == twice.version
    assert [d.actor for d in twice.decisions] == ["bob"]


def test_one_vote_per_stage_and_closed_stage(app):
    spec = {"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2},
                       {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]}
    state = submit(app, spec)
    state = decide(app, state, "carol")
    with pytest.raises(AlreadyDecided):
        decide(app, state, "carol", cmd="again")
    state = decide(app, state, "dan")
    assert state.stage.name == "sponsor"
    with pytest.raises(StageClosed):
        decide(app, state, "erin")


def test_reject_ends_and_finished_chain_refuses(app):
    state = decide(app, submit(app), "bob", "reject")
    assert state.status == "rejected" and state.stage is None
    with pytest.raises(ChainFinished):
        decide(app, state, "carol")


def test_request_changes_then_revision_restart_and_resume(app):
    for on_revision, expected_stage in (("restart", "design"), ("resume", "engineering")):
        spec = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"},
                           {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2}],
                "on_revision": on_revision}
        state = submit(app, spec, did=f"00000000-0000-0000-0000-00000000000{2 if on_revision == 'restart' else 3}")
        state = decide(app, state, "bob")
        state = decide(app, state, "carol")
        state = decide(app, state, "dan", "request_changes")
        assert state.status == "changes_requested" and not state.stage.open
        with pytest.raises(StageClosed):
            decide(app, state, "erin")
        with pytest.raises(Forbidden):
            app.change_deliverable(SubmitRevision(deliverable_id=state.id, actor="bob",
                                                  uri="https://files.example/v2.pdf", sha256="b" * 64, note="",
                                                  command_id="r-bob"))
        with pytest.raises(Conflict):
            app.change_deliverable(SubmitRevision(deliverable_id=state.id, actor="alice",
                                                  uri="https://files.example/v2.pdf", sha256=revision()["sha256"],
                                                  note="", command_id="r-same"))
        state = full(app, app.change_deliverable(SubmitRevision(deliverable_id=state.id, actor="alice",
                                                                uri="https://files.example/v2.pdf", sha256="b" * 64,
                                                                note="fixed", command_id="r2")))
        assert (state.status, state.revision, state.stage.name) == ("in_review", 2, expected_stage)
        assert state.stage.approvals == [] and state.stage.decided == []
        with pytest.raises(StaleRevision):
            decide(app, state, state.stage.approvers[0], rev=1)


def test_withdraw_only_by_submitter(app):
    state = submit(app)
    with pytest.raises(Forbidden):
        app.change_deliverable(Withdraw(deliverable_id=state.id, actor="bob", reason="", command_id="w1"))
    state = full(app, app.change_deliverable(Withdraw(deliverable_id=state.id, actor="alice",
                                                      reason="client paused the project", command_id="w2")))
    assert state.status == "withdrawn"


def test_unsatisfiable_stage_refused_at_submission(app):
    spec = {"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 4}]}
    with pytest.raises(Invalid, match="cannot be satisfied"):
        submit(app, spec)


def test_submitter_is_never_an_approver(app):
    spec = {"stages": [{"name": "authors", "approvers": {"roles": ["author", "design-lead"]}, "rule": "all"}]}
    state = submit(app, spec)
    assert state.stage.approvers == ["bob"]
    assert decide(app, state, "bob").status == "approved"


def test_escalation_grants_and_grantee_settles(app):
    spec = {"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "all", "sla": "PT2H",
                        "escalation": [{"after": "PT1H", "notify": ["pm"]},
                                       {"after": "PT2H", "notify": ["pmo"], "grant": ["pmo"]}]}]}
    state = submit(app, spec)
    with pytest.raises(NotEligible):
        decide(app, state, "paula")
    opened = state.stage.opened_at.isoformat()
    state = full(app, app.change_deliverable(FireDeadline(deliverable_id=state.id, stage_index=0, opened_at=opened,
                                                          kind="escalation", level=1, command_id="t1")))
    assert state.escalations[-1].notified == ["pete"] and state.stage.granted == []
    state = full(app, app.change_deliverable(FireDeadline(deliverable_id=state.id, stage_index=0, opened_at=opened,
                                                          kind="escalation", level=2, command_id="t2")))
    again = full(app, app.change_deliverable(FireDeadline(deliverable_id=state.id, stage_index=0, opened_at=opened,
                                                          kind="escalation", level=2,
                                                          command_id="t2-retry-with-new-id")))
    assert again.version == state.version  # a deadline fires once, whatever the command id
    assert state.stage.granted == ["paula"] and state.stage.escalation_level == 2
    state = decide(app, state, "carol")
    state = decide(app, state, "paula")
    assert state.status == "approved"
    assert state.decisions[-1].on_behalf_of == ["dan", "erin"]


def test_reassign(app):
    state = submit(app)
    state = full(app, app.change_deliverable(Reassign(deliverable_id=state.id, actor="paula", approvers=["pete"],
                                                      reason="bob is on leave", command_id="ra1")))
    assert state.stage.approvers == ["pete"]
    with pytest.raises(Forbidden):
        app.change_deliverable(Reassign(deliverable_id=state.id, actor="paula", approvers=["alice"], reason="no",
                                        command_id="ra2"))
    assert decide(app, state, "pete").stage.name == "engineering"


def test_as_of_rebuilds_the_past(app):
    state = submit(app)
    before = state.updated_at
    state = decide(app, state, "bob")
    assert app.get_deliverable(state.id, as_of=before).stage.name == "design"
    assert app.get_deliverable(state.id).stage.name == "engineering"


def test_members_are_unique():
    app = Signoff(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(Invalid):
        app.create_project("x", MEMBERS + MEMBERS[:1], [], [], "paula")


def test_people_outside_the_project_are_refused(app):
    spec = {"stages": [{"name": "legal", "approvers": {"users": ["victor"]}, "rule": "all"}]}
    with pytest.raises(Invalid, match=r"1 approver\(s\) by user id who are not members"):
        submit(app, spec)
    # An escalation name that matches nobody on the project notifies nobody, never a stranger.
    spec = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any",
                        "escalation": [{"after": "PT1H", "notify": ["nobody-here", "director", "pm"]}]}]}
    state = submit(app, spec, did="00000000-0000-0000-0000-000000000009")
    state = full(app, app.change_deliverable(FireDeadline(deliverable_id=state.id, stage_index=0,
                                                          opened_at=state.stage.opened_at.isoformat(),
                                                          kind="escalation", level=1, command_id="e1")))
    assert state.escalations[0].notified == ["pete"]
    state = submit(app, did="00000000-0000-0000-0000-00000000000a")
    with pytest.raises(Invalid, match="zed"):
        app.change_deliverable(Reassign(deliverable_id=state.id, actor="paula", approvers=["zed"], reason="cover",
                                        command_id="ra-zed"))


def test_late_approver_of_a_closed_stage_gets_a_conflict_until_the_stage_reopens(app):
    state = decide(app, submit(app), "bob")
    with pytest.raises(StageClosed):
        decide(app, state, "bob")
    state = decide(app, state, "carol", "request_changes", comment="needs dark mode")
    state = full(app, app.change_deliverable(SubmitRevision(deliverable_id=state.id, actor="alice",
                                                            uri="https://files.example/v2.pdf", sha256="c" * 64,
                                                            note="", command_id="r2")))
    assert state.stage.name == "design"
    with pytest.raises(NotEligible):  # engineering is not closed any more: it lies ahead again
        decide(app, state, "carol", rev=2)


def test_history_names_who_did_what_on_which_revision_and_by_which_command(app):
    state = submit(app)
    app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="request_changes",
                                  comment="logo too small", revision=1, command_id="deliverable-x:update:42"))
    entries = app.deliverable_history(state.id)
    assert [e["type"] for e in entries] == ["Submitted", "StageOpened", "DecisionRecorded", "ChangesRequested"]
    decision = entries[2]
    assert (decision["actor"], decision["verdict"], decision["comment"], decision["revision"],
            decision["command_id"]) == ("bob", "request_changes", "logo too small", 1, "deliverable-x:update:42")
    assert entries[0]["actor"] == "alice" and entries[3]["actor"] == "bob"
    app.change_deliverable(SubmitRevision(deliverable_id=state.id, actor="alice", uri="https://files.example/v2.pdf",
                                          sha256="d" * 64, note="bigger logo", command_id="r2"))
    entries = app.deliverable_history(state.id)
    assert [(e["type"], e["revision"]) for e in entries[4:]] == [("RevisionSubmitted", 2), ("StageOpened", 2)]


def test_next_deadline_skips_what_this_run_has_fired(app):
    spec = {"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "any", "sla": "PT2H",
                        "escalation": [{"after": "PT1H", "notify": ["pm"]}]}]}
    project_id = make_project(app)
    view = app.submit_deliverable(SubmitDeliverable(deliverable_id="00000000-0000-0000-0000-00000000000b",
                                                    project_id=project_id, title="Spec", actor="alice",
                                                    policy=make_policy(app, spec), revision=revision(),
                                                    command_id="c0"))
    first = view.next_deadline()
    assert (first.kind, first.level) == ("escalation", 1)
    after = view.next_deadline(frozenset({view.deadline_id(first)}))
    assert (after.kind, after.level) == ("sla", 0)


def test_a_decision_on_an_old_revision_is_a_stale_revision_not_a_stranger(app):
    # carol approves engineering on revision 1 while alice's revision 2 restarts the chain at design:
    # carol is no approver of design, but what went wrong is the revision she looked at.
    state = decide(app, submit(app), "bob")
    assert state.stage.name == "engineering"
    app.change_deliverable(SubmitRevision(deliverable_id=state.id, actor="alice", uri="https://files.example/v2.pdf",
                                          sha256="b" * 64, note="v2", command_id="rev-2"))
    assert full(app, app.chain_view(state.id)).stage.name == "design"
    with pytest.raises(StaleRevision):
        decide(app, state, "carol", rev=1)


def test_an_expired_command_is_never_recorded_but_a_held_one_answers_the_record(app):
    from datetime import datetime, timedelta, timezone

    from domain.errors import CommandExpired

    state = submit(app)
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    with pytest.raises(CommandExpired):
        app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="", revision=1,
                                      command_id="late", expires_at=past))
    assert full(app, app.chain_view(state.id)).version == state.version
    # Recorded in time, then the answer was lost: asked again after the deadline, the record answers.
    view = app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="",
                                         revision=1, command_id="in-time"))
    assert app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="",
                                         revision=1, command_id="in-time", expires_at=past)) == view
    with pytest.raises(CommandExpired):
        app.submit_deliverable(SubmitDeliverable(deliverable_id="00000000-0000-0000-0000-000000000002",
                                                 project_id=state.project_id, title="Late", actor="alice",
                                                 policy=make_policy(app), revision=revision(), command_id="c1",
                                                 expires_at=past))
