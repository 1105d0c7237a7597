"""Erasure (crypto-shredding) and export of a lead's personal data, on real SQLite and
PostgreSQL, with a real Temporal dev server: after `POST /v1/leads/{id}/erase` no database
leadflow writes to (the log, the read models, Temporal's own) holds the lead's email, phone
or name in a readable form; rebuilds, what-if replays and reports still work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.engine import make_url

from api.app import create_app
from domain.events import parse_event
from domain.identity import identity_index_id
from domain.lead import Lead
from domain.state import fold
from leadflow.bootstrap import Store, open_store, projections
from leadflow.settings import Settings
from projections.projector import Projector
from projections.rebuild import REBUILD_SUFFIX, rebuild
from replay.whatif import WhatIf, answer
from rules.evaluate import facts_for
from rules.validation import parse_ruleset
from store.application import recorder_of
from store.rulebook import default_ruleset_document
from store.sealing import SEALED_MARKER, open_value

if TYPE_CHECKING:
    from conftest import MailServer, RunPipeline

ADMIN = {"Authorization": "Bearer lf_test_admin"}
EMAIL = "zebulon.quixote@erasure-test.example"
PHONE_RAW = "138 0013 8123"
PHONE = "+8613800138123"
NAME = "Zebulon Quixote"
COMPANY = "Quixote Windmills"
SECRETS = [EMAIL, PHONE, PHONE.removeprefix("+86"), NAME, COMPANY]

NURTURE: dict[str, Any] = {
    "name": "nurture everyone",
    "rules": [
        {
            "id": "everyone",
            "when": ["lead.captured"],
            "priority": 10,
            "conditions": {"all": []},
            "actions": [{"name": "enroll_in_sequence", "params": {"sequence": "hello"}}],
        }
    ],
    "sequences": {"hello": {"steps": [{"wait": "PT0S", "template": "welcome"}]}},
    "templates": {"welcome": {"subject": "Welcome, {name}", "body": "Hello {name} of {company}"}},
}


def capture_body(**data: Any) -> dict[str, Any]:
    return {
        "type": "lead.captured",
        "data": {
            "email": EMAIL,
            "phone": PHONE_RAW,
            "name": NAME,
            "company": COMPANY,
            "source": "website",
            "region": "east",
            "attributes": {"budget": "big", "spouse": NAME},
            **data,
        },
    }


def project_all(store: Store) -> None:
    Projector(store.event_log, store.engine, projections()).catch_up()


def rebuild_all(store: Store) -> None:
    for live, building in zip(projections(), projections(REBUILD_SUFFIX), strict=True):
        rebuild(store.event_log, store.engine, live, building)


def read_models(store: Store) -> dict[str, list[dict[str, Any]]]:
    tables = [table for p in projections() for table in p.metadata.sorted_tables]
    with store.engine.connect() as conn:
        return {
            t.name: sorted((dict(r) for r in conn.execute(select(t)).mappings()), key=repr)
            for t in tables
        }


def readable_in_files(paths: list[Path], secrets: list[str]) -> dict[str, list[str]]:
    """Each secret found in the raw bytes of the files (UTF-8, and UTF-16 as SQLite may
    store text), by file."""
    found: dict[str, list[str]] = {}
    for path in paths:
        raw = path.read_bytes()
        hits = [
            s
            for s in secrets
            if s.encode() in raw or s.encode("utf-16-le") in raw or s.lower().encode() in raw
        ]
        if hits:
            found[str(path)] = hits
    return found


def readable_in_postgres(url: str, secrets: list[str]) -> dict[str, list[str]]:
    """Each secret found in any column of any row of any table (bytes searched raw, the
    rest as text): a dump of the database."""
    engine = create_engine(url)
    found: dict[str, list[str]] = {}
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    for value in row:
                        raw = bytes(value) if isinstance(value, bytes | memoryview) else None
                        text = raw if raw is not None else str(value).encode()
                        for secret in secrets:
                            if secret.encode() in text or secret.lower().encode() in text:
                                found.setdefault(table.name, []).append(secret)
    finally:
        engine.dispose()
    return found


def temporal_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The Temporal dev server's database files (the `temporal_address` fixture's)."""
    files = sorted(tmp_path_factory.getbasetemp().glob("temporal*/temporal.db*"))
    assert files, "the Temporal dev server's database was not found"
    return files


def leadflow_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.data_dir.glob("leadflow.db*") if p.is_file())


def source_counts(client: TestClient) -> Any:
    answered = client.get("/v1/reports/sources", headers=ADMIN)
    assert answered.status_code == 200, answered.text
    return answered.json()


async def test_an_erased_lead_is_unreadable_in_every_database_and_the_rest_still_works(
    temporal_settings: Settings,
    run_pipeline: RunPipeline,
    smtp: MailServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    async with run_pipeline(settings) as pipeline:
        store = pipeline.store
        now = datetime.now(UTC)
        store.rulebook.install_defaults(now)
        store.rulebook.activate(store.rulebook.publish(NURTURE, "test", now), "test", now)
        lead = pipeline.post(capture_body()).lead_id
        other = pipeline.capture("someone.else@example.com", name="Other Person")
        # The lead runs through Temporal: signals, decisions, a nurture email to its address.
        await pipeline.until(
            lambda: any(
                e.type == "notification.sent" and e.data.get("status") == "sent"
                for e in store.event_log.lead_events(lead)
            ),
            "the welcome email was sent",
        )
        assert [EMAIL] in [envelope.rcpt_tos for envelope in smtp.handler.envelopes]
        project_all(store)

        with TestClient(create_app(settings)) as client:
            before = client.get(f"/v1/leads/{lead}/export", headers=ADMIN)
            assert before.status_code == 200, before.text
            exported = before.json()
            assert exported["erased"] is False and exported["data_key"]["exists"] is True
            assert exported["state"]["email"] == EMAIL and exported["state"]["name"] == NAME
            assert exported["events"][0]["data"]["phone"] == PHONE
            assert exported["read_models"]["leads"][0]["email"] == EMAIL
            sent = [n for n in exported["read_models"]["notifications"] if n["recipient"]]
            assert sent and sent[0]["recipient"] == "lead" and sent[0]["status"] == "sent"
            reports_before = source_counts(client)
            data_key = store.event_log.keyring.key_for_reading(str(lead))
            assert data_key is not None

            erased = client.post(f"/v1/leads/{lead}/erase", headers=ADMIN)
            assert erased.status_code == 200, erased.text
            assert erased.json()["erased"] is True
            assert erased.json()["already_erased"] is False
            assert erased.json()["identities_removed"] == 2
            again = client.post(f"/v1/leads/{lead}/erase", headers=ADMIN)
            assert again.status_code == 200 and again.json()["already_erased"] is True
            assert again.json()["sequence"] == erased.json()["sequence"]

            project_all(store)
            after = client.get(f"/v1/leads/{lead}/export", headers=ADMIN).json()
            assert after["erased"] is True and after["data_key"]["exists"] is False
            assert not [s for s in SECRETS if s in json.dumps(after)]
            assert after["read_models"]["leads"][0]["source"] == "website"  # the lead stays
            assert [e["type"] for e in after["events"]][-1] == "lead.erased"
            notified = after["read_models"]["notifications"]
            assert [(n["recipient"], n["status"]) for n in notified if n["to"] == "lead"] == [
                (None, "sent")
            ]
            shown = client.get(f"/v1/leads/{lead}", headers=ADMIN).json()
            assert shown["erased"] is True and shown["email"] is None and shown["name"] is None

            # Reports keep their counts.
            assert source_counts(client) == reports_before

            # A rebuild makes the same (blanked) rows; the other lead is untouched.
            rows = read_models(store)
            rebuild_all(store)
            assert read_models(store) == rows
            assert store.event_log.lead_state(other).name == "Other Person"

            # A what-if replay over the log, the erased lead included, still runs.
            candidate = parse_ruleset(default_ruleset_document(), store.rulebook.directory())
            diff = answer(WhatIf(candidate), store.event_log, store.rulebook, parallel_from=None)
            assert diff is not None

            # The same email captured again is a new lead.
            recaptured = client.post("/v1/events", json=capture_body(), headers=ADMIN)
            assert recaptured.status_code == 202, recaptured.text
            assert recaptured.json()["new_lead"] is True
            assert recaptured.json()["lead_id"] != str(lead)
            new_lead = UUID(recaptured.json()["lead_id"])
            await pipeline.until(
                lambda: len(store.event_log.lead_events(new_lead)) > 1, "the new lead decided"
            )
            # ... erased too, so that nothing of the secrets is left anywhere below.
            assert client.post(f"/v1/leads/{new_lead}/erase", headers=ADMIN).status_code == 200
            project_all(store)
        await pipeline.until(
            lambda: all(
                e.type != "notification.queued"
                or any(
                    s.type == "notification.sent" and s.data.get("notification_id") == e.event_id
                    for s in store.event_log.lead_events(new_lead)
                )
                for e in store.event_log.lead_events(new_lead)
            ),
            "the new lead's deliveries ended",
        )
        project_all(store)

    # Nothing readable: leadflow's databases and Temporal's.
    assert readable_in_files(temporal_files(tmp_path_factory), SECRETS) == {}
    if settings.database_url is None:
        assert readable_in_files(leadflow_files(settings), SECRETS) == {}
        # Nor the deleted key, which would open every sealed copy (a backup) again.
        assert not [p for p in leadflow_files(settings) if data_key in p.read_bytes()]
    else:
        url = make_url(settings.sqlalchemy_url).render_as_string(hide_password=False)
        assert readable_in_postgres(url, SECRETS) == {}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def make_key(client: TestClient, scope: str) -> dict[str, str]:
    made = client.post("/v1/keys", json={"scopes": [scope]}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


def test_erase_and_export_refuse_what_they_cannot_do(client: TestClient) -> None:
    posted = client.post("/v1/events", json=capture_body(), headers=ADMIN)
    lead = posted.json()["lead_id"]
    reader = make_key(client, "read")
    for method, path in (("post", "erase"), ("get", "export")):
        call = getattr(client, method)
        assert call(f"/v1/leads/{lead}/{path}").status_code == 401
        refused = call(f"/v1/leads/{lead}/{path}", headers=reader)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        bad = call(f"/v1/leads/not-a-uuid/{path}", headers=ADMIN)
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["path"] == "/lead_id"
        assert call(f"/v1/leads/{uuid4()}/{path}", headers=ADMIN).status_code == 404
        # A stream of the log that is not a lead (an identity's index) is no lead either.
        index = identity_index_id("email", EMAIL)
        assert call(f"/v1/leads/{index}/{path}", headers=ADMIN).status_code == 404
        assert call(f"/v1/leads/{lead}/{path}/..%2f..%2fkeys", headers=ADMIN).status_code == 404
    # Nothing was erased by the refused calls.
    still = client.get(f"/v1/leads/{lead}/export", headers=ADMIN).json()
    assert still["erased"] is False and still["state"]["email"] == EMAIL
    # An erased lead still takes business events (reports count them); no personal data.
    assert client.post(f"/v1/leads/{lead}/erase", headers=ADMIN).status_code == 200
    note = {"type": "lead.followed_up", "lead_id": lead, "data": {"rep_id": "r", "note": NAME}}
    assert client.post("/v1/events", json=note, headers=ADMIN).status_code == 202
    events = client.get(f"/v1/leads/{lead}/events", headers=ADMIN).json()["events"]
    assert events[-1]["type"] == "lead.followed_up" and "note" not in events[-1]["data"]


def test_events_stored_before_sealing_are_blanked_by_the_erasure(store: Store) -> None:
    """An event written by a release without sealing holds plaintext no key deletion can
    reach: erasure blanks its personal fields in place."""
    lead_id = uuid4()
    event = parse_event(capture_body(), now=datetime.now(UTC), phone_region="CN")
    lead = Lead.capture(lead_id, "old-1", event.occurred_at, event.data)
    plain: Mapper[UUID] = Mapper(transcoder=store.event_log.mapper.transcoder)
    assert isinstance(plain.transcoder, JSONTranscoder)
    recorder = recorder_of(store.event_log)
    recorder.insert_events([plain.to_stored_event(e) for e in lead.collect_events()])
    [stored] = recorder.select_events(lead_id)
    assert EMAIL.encode() in stored.state and SEALED_MARKER not in stored.state
    assert store.event_log.lead_state(lead_id).email == EMAIL

    erased = store.event_log.erase_lead(lead_id, erased_by="key_test", now=datetime.now(UTC))
    assert erased.events_blanked == 1
    stored = recorder.select_events(lead_id)[0]
    assert not [s for s in SECRETS if s.encode() in stored.state]
    assert b'"source":"website"' in stored.state  # the rest of the fact stays
    assert store.event_log.lead_events(lead_id)[0].data.get("email") is None


def test_a_lead_touched_with_another_leads_phone_leaves_that_index_alone(store: Store) -> None:
    """Erasing a lead removes only the identity entries that resolve to it."""
    log = store.event_log
    now = datetime.now(UTC)
    first = log.append(
        [parse_event(capture_body(email="a@x.io"), now=now, phone_region="CN")], [None]
    )
    second_body = capture_body(email="b@x.io", phone="13900139000")
    second = log.append([parse_event(second_body, now=now, phone_region="CN")], [None])
    # b@x.io's lead touched with the first lead's phone: the email wins, the phone stays A's.
    touch = capture_body(email="b@x.io")
    log.append([parse_event(touch, now=now, phone_region="CN")], [None])
    log.erase_lead(second[0].lead_id, erased_by="key_test", now=now)
    again = log.append(
        [parse_event(capture_body(email="c@x.io"), now=now, phone_region="CN")], [None]
    )
    assert again[0].lead_id == first[0].lead_id  # found by the phone the first lead keeps
    fresh = log.append([parse_event(second_body, now=now, phone_region="CN")], [None])
    assert fresh[0].new_lead and fresh[0].lead_id != second[0].lead_id


def test_a_sealed_box_opens_only_for_its_lead_and_kind_of_event(store: Store) -> None:
    """A sealed value copied into another lead's event (or another kind) does not open;
    the stored capture shows which fields are sealed, never their values."""
    log = store.event_log
    now = datetime.now(UTC)
    a_body = capture_body(email="a@x.io")
    [a] = log.append([parse_event(a_body, now=now, phone_region="CN")], [None])
    b_body = capture_body(email="b@x.io", phone="13900139000")
    [b] = log.append([parse_event(b_body, now=now, phone_region="CN")], [None])
    recorder = recorder_of(log)
    stored = json.loads(recorder.select_events(a.lead_id)[0].state)["data"]
    assert stored["sealed"]["fields"] == ["email", "phone", "name", "company", "attributes"]
    assert "email" not in stored and stored["email_domain"] == "x.io"
    stolen = stored["sealed"]["box"]
    key_b = log.keyring.key_for_reading(str(b.lead_id))
    assert open_value(key_b, str(b.lead_id), "lead.captured", stolen) is None
    key_a = log.keyring.key_for_reading(str(a.lead_id))
    assert open_value(key_a, str(a.lead_id), "lead.followed_up", stolen) is None
    assert open_value(key_a, str(a.lead_id), "lead.captured", stolen)["email"] == "a@x.io"


def test_rules_still_see_the_email_domain_and_the_phone_after_an_erasure(store: Store) -> None:
    """`email_domain` and `has_phone` are derived at capture and kept apart, so a replay
    of an erased lead decides as the lead's workflow did."""
    log = store.event_log
    now = datetime.now(UTC)
    [captured] = log.append([parse_event(capture_body(), now=now, phone_region="CN")], [None])
    before = facts_for(log.lead_state(captured.lead_id), now, {})
    log.erase_lead(captured.lead_id, erased_by="key_test", now=now)
    # Folded again from the stored events (no cached aggregate), as a replay does.
    state = fold(str(captured.lead_id), log.lead_events(captured.lead_id))
    assert state.email is None and state.phone is None and state.erased
    after = facts_for(state, now, {})
    assert after["email_domain"] == before["email_domain"] == "erasure-test.example"
    assert after["has_phone"] is before["has_phone"] is True


def test_a_process_that_cached_the_key_reads_nothing_once_another_erased_the_lead(
    store: Store, settings: Settings
) -> None:
    """Keys are cached per process; an erasure made by another process (another API
    replica) is seen by the next read of the lead, which ends with its `lead.erased`."""
    now = datetime.now(UTC)
    [captured] = store.event_log.append(
        [parse_event(capture_body(), now=now, phone_region="CN")], [None]
    )
    assert store.event_log.lead_events(captured.lead_id)[0].data["email"] == EMAIL  # cached
    other = open_store(settings)
    try:
        other.event_log.erase_lead(captured.lead_id, erased_by="key_test", now=now)
    finally:
        other.close()
    events = store.event_log.lead_events(captured.lead_id)
    assert events[0].data["email"] is None and events[0].data["name"] is None
    assert events[-1].type == "lead.erased"
    assert store.event_log.keyring.key_for_reading(str(captured.lead_id)) is None
