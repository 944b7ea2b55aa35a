"""The pure matcher that gives audit events' users to data changes (no sockets, no clock)."""

from __future__ import annotations

from agent.sources.base import Reading
from agent.sources.opcua.audit import ActorMatcher, AuditedWrite, Change
from agent.sources.opcua.subscribe import batches

NODE = "ns=2;s=Oven.Zone1.TemperatureSP"


def change(value: float, node: str = NODE, tag: str = "temperature_sp") -> Change:
    return Change(tag, node, Reading(value))


def test_audit_first_then_change_gets_the_user() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    assert m.audit(AuditedWrite(NODE, "j.doe", 185.0), now=10.0) == []
    assert m.change(change(185.0), now=10.1) == [(change(185.0), "j.doe")]


def test_change_first_is_held_until_its_audit_event() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    assert m.change(change(185.0), now=10.0) == []
    assert m.next_due() == 10.25
    assert m.audit(AuditedWrite(NODE, "j.doe", 185.0), now=10.2) == [(change(185.0), "j.doe")]
    assert m.next_due() is None


def test_a_held_change_is_released_without_actor_after_the_hold() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    m.change(change(185.0), now=10.0)
    assert m.due(now=10.2) == []
    assert m.due(now=10.25) == [(change(185.0), None)]


def test_an_audit_event_expires_after_the_window() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.0)
    m.audit(AuditedWrite(NODE, "j.doe", 185.0), now=10.0)
    assert m.change(change(185.0), now=12.5) == [(change(185.0), None)]


def test_an_audit_event_never_names_the_user_of_another_value() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    m.change(change(180.0), now=10.0)  # e.g. the initial notification of the subscription
    assert m.audit(AuditedWrite(NODE, "j.doe", 185.0), now=10.05) == []
    assert m.due(now=10.3) == [(change(180.0), None)]
    assert m.change(change(185.0), now=10.4) == [(change(185.0), "j.doe")]


def test_two_writes_to_one_node_keep_their_own_users() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.0)
    m.audit(AuditedWrite(NODE, "a", 1.0), now=1.0)
    m.audit(AuditedWrite(NODE, "b", 2.0), now=1.0)
    assert m.change(change(2.0), now=1.1) == [(change(2.0), "b")]
    assert m.change(change(1.0), now=1.1) == [(change(1.0), "a")]


def test_other_nodes_are_not_matched() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.0)
    m.audit(AuditedWrite("ns=2;s=Other", "j.doe", 185.0), now=1.0)
    assert m.change(change(185.0), now=1.1) == [(change(185.0), None)]


def test_the_changes_of_one_node_stay_in_order() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    assert m.change(change(180.0), now=1.0) == []
    m.audit(AuditedWrite(NODE, "j.doe", 185.0), now=1.01)
    assert m.change(change(185.0), now=1.02) == [(change(180.0), None), (change(185.0), "j.doe")]
    assert m.due(now=5.0) == []


def test_an_audit_event_releases_the_older_changes_of_its_node_first() -> None:
    m = ActorMatcher(window_s=2.0, hold_s=0.25)
    other = change(7.0, node="ns=2;s=Other", tag="other")
    m.change(change(180.0), now=1.0)
    m.change(other, now=1.0)
    m.change(change(185.0), now=1.01)
    released = m.audit(AuditedWrite(NODE, "j.doe", 185.0), now=1.02)
    assert released == [(change(180.0), None), (change(185.0), "j.doe")]
    assert m.due(now=5.0) == [(other, None)]


def test_batches_never_put_one_tag_twice_in_a_readings() -> None:
    a1, b, a2 = change(1.0), change(2.0, tag="b"), change(3.0)
    assert list(batches([(a1, None), (b, "x"), (a2, None)])) == [[(a1, None), (b, "x")],
                                                                 [(a2, None)]]
    assert list(batches([])) == []


def test_a_new_session_keeps_waiting_for_the_servers_audit_events() -> None:
    """The server's audit events outlive a session: after a reconnect (a program download
    restarts the server) the first change still waits for its audit event, or it would be
    reported without its actor."""
    import time

    from agent.config import OpcuaControllerConfig
    from agent.sources.opcua.subscribe import SessionSubscription
    from tests.agent.sources.opcua.test_browse_path_config import controller, tag

    config = OpcuaControllerConfig.model_validate(controller(tag(node="ns=2;s=t")))
    fresh = SessionSubscription(config, session=None, emit=None)  # type: ignore[arg-type]
    again = SessionSubscription(config, session=None, emit=None,  # type: ignore[arg-type]
                                last_audit=time.monotonic())
    fresh.audited = again.audited = True
    assert fresh._hold_s() < again._hold_s() == config.publishing_interval_ms / 1000
