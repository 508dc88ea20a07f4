"""The role state machine: level-triggered from the addresses on the interface."""
import pytest

from esl_apps.roles import RETRY_SECONDS, Action, RoleMachine, Step, VipState


def kinds(steps):
    return [(s.action, s.vip) for s in steps]


def test_start_takes_over_held_and_releases_the_rest_once():
    machine = RoleMachine("pbx3", ["vip1", "vip2"])
    steps = machine.observe({"vip1"}, now=0)
    assert kinds(steps) == [(Action.TAKEOVER, "vip1"), (Action.RELEASE, "vip2")]
    for step in steps:
        machine.finished(step, ok=True, now=0)
    assert machine.states == {"vip1": VipState.MASTER, "vip2": VipState.BACKUP}
    assert machine.observe({"vip1"}, now=1) == []          # steady state: nothing to do
    assert machine.role == "active" and machine.held() == ["vip1"]


def test_lost_notify_is_healed_by_the_next_observation():
    machine = RoleMachine("pbx3", ["vip1"])
    machine.finished(machine.observe(set(), now=0)[0], ok=True, now=0)
    assert machine.role == "passive"
    # keepalived added the address but the notify never arrived: observe alone acts.
    step = machine.observe({"vip1"}, now=1)[0]
    assert (step.action, step.vip) == (Action.TAKEOVER, "vip1")
    machine.finished(step, ok=True, now=1)
    # ... and removed it, again without a notify.
    assert kinds(machine.observe(set(), now=2)) == [(Action.RELEASE, "vip1")]


def _step(action):
    return Step(action, "vip1", "test")


def test_failed_takeover_is_retried_only_after_the_backoff():
    machine = RoleMachine("pbx3", ["vip1"])
    step = machine.observe({"vip1"}, now=10)[0]
    machine.finished(step, ok=False, now=10)
    assert machine.states["vip1"] is VipState.FAULT
    assert machine.observe({"vip1"}, now=10 + RETRY_SECONDS / 2) == []
    assert kinds(machine.observe({"vip1"}, now=10 + RETRY_SECONDS)) == [(Action.TAKEOVER, "vip1")]


def test_claim_lost_releases_a_master_only():
    machine = RoleMachine("pbx1", ["vip1"])
    assert machine.claim_lost("vip1") is None
    machine.finished(machine.observe({"vip1"}, now=0)[0], ok=True, now=0)
    step = machine.claim_lost("vip1")
    assert (step.action, machine.states["vip1"]) == (Action.RELEASE, VipState.RELEASING)


def test_notify_is_recorded_but_does_not_change_state():
    machine = RoleMachine("pbx1", ["vip1"])
    machine.notified("vip1", "MASTER")
    assert machine.keepalived == {"vip1": "MASTER"}
    assert machine.states["vip1"] is VipState.UNKNOWN


def test_illegal_transition_raises():
    machine = RoleMachine("pbx1", ["vip1"])
    with pytest.raises(RuntimeError, match="illegal role transition"):
        machine.finished(_step(Action.TAKEOVER), ok=True, now=0)
