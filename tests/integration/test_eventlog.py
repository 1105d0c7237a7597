"""The event log on real SQLite and PostgreSQL: the commit point of the ingest path."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import IdempotencyKeyReused, LeadNotInPool, StageWouldMoveBackward
from domain.events import IncomingEvent, parse_event
from domain.lead import EXTERNAL_LEAD_TOPICS
from leadflow.bootstrap import Store, open_store
from leadflow.eventlog import EventLog, ItemRejected
from leadflow.settings import Settings
from projections.projector import LEAD_TOPICS


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    yield opened
    opened.close()


def event(type_: str, data: dict[str, Any], lead_id: Any = None, **kw: Any) -> IncomingEvent:
    body: dict[str, Any] = {"type": type_, "data": data, **kw}
    if lead_id is not None:
        body["lead_id"] = str(lead_id)
    return parse_event(body, now=datetime.now(UTC), phone_region="CN")


def capture(email: str | None = None, phone: str | None = None, **kw: Any) -> IncomingEvent:
    data = {
        "source": "web",
        **({"email": email} if email else {}),
        **({"phone": phone} if phone else {}),
    }
    return event("lead.captured", data, **kw)


def test_captures_resolve_identity_by_email_then_phone(store: Store) -> None:
    log = store.event_log
    [first] = log.append([capture(email="Ann@X.io")], [None])
    [by_phone_and_email] = log.append([capture(email="ann@x.io", phone="13800138000")], [None])
    [by_phone] = log.append([capture(phone="+86 138 0013 8000")], [None])
    [other] = log.append([capture(email="bob@x.io")], [None])
    assert first.new_lead and not by_phone_and_email.new_lead and not by_phone.new_lead
    assert first.lead_id == by_phone_and_email.lead_id == by_phone.lead_id != other.lead_id
    assert [first.sequence, by_phone_and_email.sequence, by_phone.sequence] == [1, 2, 3]
    assert first.lead_id is not None
    state = log.lead_state(first.lead_id)
    assert (state.email, state.phone, state.touch_count) == ("ann@x.io", "+8613800138000", 3)


def test_an_event_id_makes_a_post_idempotent(store: Store) -> None:
    log = store.event_log
    [original] = log.append([capture(email="a@x.io", event_id="form-1")], ["form-1"])
    [again] = log.append([capture(email="a@x.io", event_id="form-1")], ["form-1"])
    assert again.duplicate and not original.duplicate
    assert (again.event_id, again.lead_id, again.sequence) == ("form-1", original.lead_id, 1)
    assert original.lead_id is not None
    assert len(log.lead_events(original.lead_id)) == 1
    with pytest.raises(ItemRejected) as rejected:
        log.append([capture(email="other@x.io", event_id="form-1")], ["form-1"])
    assert isinstance(rejected.value.cause, IdempotencyKeyReused)


def test_concurrent_captures_of_one_identity_make_one_lead(store: Store) -> None:
    def post(i: int) -> Any:
        spelled = "  Same@Example.com " if i % 2 else "same@example.COM"
        return store.event_log.append([capture(email=spelled)], [None])[0]

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(post, range(20)))
    assert len({r.lead_id for r in results}) == 1
    assert sum(r.new_lead for r in results) == 1
    assert sorted(r.sequence for r in results) == list(range(1, 21))


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    log = store.event_log
    [lead] = log.append([capture(email="a@x.io")], [None])
    batch = [
        capture(email="new@x.io"),
        event("lead.qualified", {"stage": "SQL"}, lead.lead_id),
        event("lead.qualified", {"stage": "MQL"}, lead.lead_id),  # backwards: refused
    ]
    with pytest.raises(ItemRejected) as rejected:
        log.append(batch, [None, None, None])
    assert rejected.value.index == 2
    assert isinstance(rejected.value.cause, StageWouldMoveBackward)
    assert lead.lead_id is not None
    assert len(log.lead_events(lead.lead_id)) == 1
    assert log.read_lead_events_after(0, 100)[0][-1].data["email"] == "a@x.io"


def test_a_batch_sees_its_own_earlier_items(store: Store) -> None:
    results = store.event_log.append(
        [capture(email="a@x.io"), capture(email="A@x.io"), capture(email="b@x.io")],
        [None, None, None],
    )
    assert [r.new_lead for r in results] == [True, False, True]
    assert results[0].lead_id == results[1].lead_id
    assert [r.sequence for r in results] == [1, 2, 1]


def test_state_guards_append_nothing(store: Store) -> None:
    log = store.event_log
    [lead] = log.append([capture(email="a@x.io")], [None])
    with pytest.raises(ItemRejected) as rejected:
        log.append([event("lead.claimed", {"rep_id": "rep-a"}, lead.lead_id)], [None])
    assert isinstance(rejected.value.cause, LeadNotInPool)
    assert lead.lead_id is not None
    assert [e.type for e in log.lead_events(lead.lead_id)] == ["lead.captured"]


def test_spend_has_its_own_stream(store: Store) -> None:
    spend = event("campaign.spend_recorded", {"campaign_id": "c1", "amount": "10.5"})
    first, second = store.event_log.append([spend, spend], [None, None])
    assert (first.lead_id, first.sequence, second.sequence) == (None, 2, 3)
    # Spend is not a lead event: the dispatcher has nothing to deliver.
    assert store.event_log.read_lead_events_after(0, 100) == ([], None)


def test_the_notification_log_reads_as_the_librarys_own_recorder(
    store: Store, settings: Settings
) -> None:
    """leadflow's recorder reads the log with its own statement (the projector's and the
    dispatcher's read): the same notifications as eventsourcing's recorder, however asked."""
    log = store.event_log
    [ann] = log.append([capture(email="ann@x.io")], [None])
    log.append([event("lead.followed_up", {"rep_id": "rep-a"}, lead_id=ann.lead_id)], [None])
    log.append([capture(email="bob@x.io"), capture(phone="13800138000")], ["key-1", None])
    stock = EventLog(
        env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": settings.sqlalchemy_url,
        }
    )
    try:
        everything = log.recorder.select_notifications(None, 100)
        # 3 captures, 1 follow-up, 3 identity indexes (2 emails, 1 phone), 1 idempotency record.
        assert len(everything) == 8
        assert everything == stock.recorder.select_notifications(None, 100)
        [_, second, *_, last] = [n.id for n in everything]
        for start, stop, topics, inclusive in [
            (None, None, LEAD_TOPICS, True),
            (second, None, LEAD_TOPICS, False),
            (second, None, (), True),
            (second, last - 1, EXTERNAL_LEAD_TOPICS, False),
            (last, None, (), False),
        ]:
            for limit in (1, 3, 100):
                ours = log.recorder.select_notifications(
                    start, limit, stop, topics, inclusive_of_start=inclusive
                )
                theirs = stock.recorder.select_notifications(
                    start, limit, stop, topics, inclusive_of_start=inclusive
                )
                assert ours == theirs, (start, stop, topics, inclusive, limit)
        lead_events = log.recorder.select_notifications(None, 100, topics=LEAD_TOPICS)
        assert [n.originator_version for n in lead_events] == [1, 2, 1, 1]
    finally:
        stock.close()
