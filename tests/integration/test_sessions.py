"""People signing in to the console, on real SQLite and PostgreSQL (issue #19): sessions in
an HttpOnly cookie, CSRF on unsafe requests, expiry, disabled users, the failed-sign-in
throttle, user administration with its 422s and its history, and the actor recorded on
every event a person or a key posts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from people import ADMIN, PASSWORD, create_user, placed_lead, sign_in, store_of
from sqlalchemy import select

from api.app import create_app
from api.auth_failures import FAILURE_LIMIT
from leadflow.settings import Settings
from store.users import hash_session, user_sessions, users


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_signing_in_sets_an_httponly_samesite_cookie_and_answers_who_and_a_csrf_token(
    client: TestClient,
) -> None:
    created = create_user(client, "Wang@Example.com", "rep", "rep-east-1", locale="zh-CN")
    assert created["login"] == "wang@example.com"
    assert created["name"] == "Li Wei"  # the directory's name by default
    answered = client.post("/v1/session", json={"login": "WANG@example.com", "password": PASSWORD})
    assert answered.status_code == 200, answered.text
    cookie, marker = answered.headers.get_list("set-cookie")
    session_id = cookie.split(";")[0].removeprefix("leadflow_session=")
    assert len(session_id) >= 40
    flags = [flag.strip() for flag in cookie.split(";")[1:]]
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Path=/" in flags
    assert "Secure" not in flags  # plain http here
    # Beside it, a cookie the console's script may read: "there is a session", no secret.
    assert marker.split(";")[0] == "leadflow_signed_in=1"
    assert "HttpOnly" not in marker and "SameSite=Lax" in marker
    body = answered.json()
    assert body["user"] == {
        "user_id": created["user_id"],
        "login": "wang@example.com",
        "name": created["name"],
        "role": "rep",
        "person_id": "rep-east-1",
        "team": "east",
        "locale": "zh-CN",
        "time_zone": None,
    }
    assert len(body["csrf_token"]) >= 40
    # Only a hash of the session id is stored.
    with store_of(client).engine.connect() as conn:
        stored = conn.execute(select(user_sessions.c.session_hash)).scalars().all()
    assert stored == [hash_session(session_id)]
    who = client.get("/v1/session")
    assert who.status_code == 200
    assert who.json() == body


def test_the_cookie_is_secure_over_https(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        create_user(client, "li@example.com", "rep", "rep-east-2")
        answered = client.post(
            "/v1/session", json={"login": "li@example.com", "password": PASSWORD}
        )
        for cookie in answered.headers.get_list("set-cookie"):
            assert "Secure" in [f.strip() for f in cookie.split(";")]


def test_a_wrong_login_a_wrong_password_and_a_disabled_user_get_the_same_401(
    client: TestClient,
) -> None:
    user = create_user(client, "zhao@example.com", "rep", "rep-west-1")
    disabled = client.patch(f"/v1/users/{user['user_id']}", json={"disabled": True}, headers=ADMIN)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    create_user(client, "qian@example.com", "rep", "rep-west-2")
    answers = [
        client.post("/v1/session", json={"login": "nobody@example.com", "password": PASSWORD}),
        client.post("/v1/session", json={"login": "qian@example.com", "password": "wrong-one!"}),
        client.post("/v1/session", json={"login": "zhao@example.com", "password": PASSWORD}),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["error"]["code"] == "invalid_credentials"
    assert all("set-cookie" not in a.headers for a in answers)


def test_too_many_failed_sign_ins_from_one_address_are_refused_with_429(
    client: TestClient,
) -> None:
    create_user(client, "sun@example.com", "rep", "rep-east-1")
    wrong = {"login": "sun@example.com", "password": "not the password"}
    for _ in range(FAILURE_LIMIT):
        assert client.post("/v1/session", json=wrong).status_code == 401
    refused = client.post("/v1/session", json={"login": "sun@example.com", "password": PASSWORD})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


def test_an_unsafe_request_by_cookie_needs_the_sessions_csrf_token(client: TestClient) -> None:
    create_user(client, "zhou@example.com", "manager", "mgr-east")
    token = sign_in(client, "zhou@example.com")
    # (A person posts no captures: those are the systems'. Their own preferences will do.)
    prefer = {"locale": "en"}
    missing = client.patch("/v1/session", json=prefer)
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "csrf_failed"
    wrong = client.patch("/v1/session", json=prefer, headers={"X-CSRF-Token": token[:-1] + "x"})
    assert wrong.status_code == 403
    assert client.get("/v1/session").json()["user"]["locale"] != "en"  # nothing changed
    accepted = client.patch("/v1/session", json=prefer, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200, accepted.text
    assert client.get("/v1/session").json()["user"]["locale"] == "en"
    # A key is not a cookie: no token needed.
    other = {"type": "lead.captured", "data": {"email": "b@example.com", "source": "fair"}}
    client.cookies.clear()
    assert client.post("/v1/events", json=other, headers=ADMIN).status_code == 202


def test_signing_out_ends_the_session_and_clears_the_cookie(client: TestClient) -> None:
    create_user(client, "wu@example.com", "director", "dir-sales")
    token = sign_in(client, "wu@example.com")
    session_id = client.cookies["leadflow_session"]
    assert client.delete("/v1/session").status_code == 403  # no CSRF token
    out = client.delete("/v1/session", headers={"X-CSRF-Token": token})
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    assert "leadflow_session=;" in out.headers["set-cookie"]
    assert "Max-Age=0" in out.headers["set-cookie"]
    # The old cookie, sent again, is refused.
    client.cookies.set("leadflow_session", session_id)
    again = client.get("/v1/leads")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "session_expired"


def test_a_session_expires_after_12_hours_idle_and_7_days_whatever(client: TestClient) -> None:
    create_user(client, "he@example.com", "rep", "rep-east-1")
    sign_in(client, "he@example.com")
    hashed = hash_session(client.cookies["leadflow_session"])
    engine = store_of(client).engine
    now = datetime.now(UTC)

    def age(created: timedelta, seen: timedelta) -> int:
        with engine.begin() as conn:
            conn.execute(
                user_sessions.update()
                .where(user_sessions.c.session_hash == hashed)
                .values(created_at=now - created, last_seen_at=now - seen)
            )
        return client.get("/v1/leads").status_code

    assert age(timedelta(hours=11), timedelta(hours=11, minutes=50)) == 200
    assert age(timedelta(days=6), timedelta(minutes=5)) == 200
    assert age(timedelta(hours=13), timedelta(hours=12, minutes=1)) == 401
    assert age(timedelta(days=7, minutes=1), timedelta(minutes=1)) == 401


def test_disabling_a_user_ends_their_sessions_at_once(client: TestClient) -> None:
    user = create_user(client, "ma@example.com", "rep", "rep-west-1")
    sign_in(client, "ma@example.com")
    assert client.get("/v1/leads").status_code == 200
    session = dict(client.cookies)
    client.cookies.clear()
    changed = client.patch(f"/v1/users/{user['user_id']}", json={"disabled": True}, headers=ADMIN)
    assert changed.status_code == 200
    client.cookies.update(session)
    assert client.get("/v1/leads").status_code == 401


def test_people_change_their_own_locale_and_time_zone(client: TestClient) -> None:
    create_user(client, "lin@example.com", "rep", "rep-east-2")
    token = sign_in(client, "lin@example.com")
    headers = {"X-CSRF-Token": token}
    changed = client.patch(
        "/v1/session", json={"locale": "en", "time_zone": "Asia/Shanghai"}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["user"]["locale"], changed.json()["user"]["time_zone"]) == (
        "en",
        "Asia/Shanghai",
    )
    bad = client.patch(
        "/v1/session",
        json={"locale": "fr", "time_zone": "Mars/Olympus", "role": "admin"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert sorted(d["path"] for d in bad.json()["error"]["details"]) == [
        "/locale",
        "/role",
        "/time_zone",
    ]
    assert client.get("/v1/session").json()["user"]["locale"] == "en"


def test_user_administration_refuses_each_bad_field_by_pointer(client: TestClient) -> None:
    bad = client.post(
        "/v1/users",
        json={
            "login": "",
            "role": "boss",
            "person_id": "nobody-here",
            "password": "short",
            "time_zone": "Nowhere/Land",
            "extra": 1,
        },
        headers=ADMIN,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_user"
    assert sorted(d["path"] for d in bad.json()["error"]["details"]) == [
        "/extra",
        "/login",
        "/password",
        "/person_id",
        "/role",
        "/time_zone",
    ]
    # A rep needs a directory person; a password is at most 256 characters.
    needs_person = client.post(
        "/v1/users", json={"login": "x@example.com", "role": "rep"}, headers=ADMIN
    )
    assert [d["path"] for d in needs_person.json()["error"]["details"]] == ["/person_id"]
    user = create_user(client, "gao@example.com", "rep", "rep-east-1")
    patched = client.patch(
        f"/v1/users/{user['user_id']}",
        json={"role": "manager", "person_id": "ghost", "password": "x" * 257, "disabled": "no"},
        headers=ADMIN,
    )
    assert patched.status_code == 422
    assert sorted(d["path"] for d in patched.json()["error"]["details"]) == [
        "/disabled",
        "/password",
        "/person_id",
    ]
    taken = client.post(
        "/v1/users",
        json={"login": "GAO@example.com", "role": "rep", "person_id": "rep-east-2"},
        headers=ADMIN,
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "login_taken"
    assert client.get("/v1/users/usr_nobody", headers=ADMIN).status_code == 404


def test_a_user_created_without_a_password_gets_one_generated_and_shown_once(
    client: TestClient,
) -> None:
    created = client.post(
        "/v1/users", json={"login": "admin2@example.com", "role": "admin"}, headers=ADMIN
    )
    assert created.status_code == 201
    password = created.json()["password"]
    assert len(password) >= 16
    assert (
        "password" not in client.get(f"/v1/users/{created.json()['user_id']}", headers=ADMIN).json()
    )
    sign_in(client, "admin2@example.com", password)


def test_user_administration_is_recorded_with_the_admin_who_did_it(client: TestClient) -> None:
    admin = create_user(client, "boss@example.com", "admin", None)
    user = create_user(client, "xu@example.com", "rep", "rep-east-1")
    token = sign_in(client, "boss@example.com")
    changed = client.patch(
        f"/v1/users/{user['user_id']}",
        json={"role": "manager", "person_id": "mgr-east", "password": "a new password"},
        headers={"X-CSRF-Token": token},
    )
    assert changed.status_code == 200, changed.text
    history = client.get(f"/v1/users/{user['user_id']}/events").json()["events"]
    assert [e["type"] for e in history] == ["user.created", "user.changed", "user.password_set"]
    assert history[0]["by"] == {"kind": "key", "key_id": "bootstrap"}
    assert history[0]["changes"]["role"] == "rep"
    by_admin = {"kind": "user", "user_id": admin["user_id"], "person_id": None, "role": "admin"}
    assert history[1] == {**history[1], "by": by_admin}
    assert history[1]["changes"] == {"role": "manager", "person_id": "mgr-east"}
    assert history[2]["by"] == by_admin and history[2]["changes"] == {}
    assert "a new password" not in str(history)
    client.cookies.clear()
    sign_in(client, "xu@example.com", "a new password")
    assert client.get("/v1/session").json()["user"]["role"] == "manager"


def test_a_password_hashed_with_older_parameters_is_rehashed_at_sign_in(
    client: TestClient,
) -> None:
    user = create_user(client, "old@example.com", "rep", "rep-west-1")
    engine = store_of(client).engine
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(
            users.update().where(users.c.user_id == user["user_id"]).values(password_hash=weak)
        )
    sign_in(client, "old@example.com")
    with engine.connect() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(users.c.user_id == user["user_id"])
        ).scalar_one()
    assert stored != weak and stored.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(stored)


def test_each_event_records_who_posted_it_and_never_from_the_body(client: TestClient) -> None:
    rep = create_user(client, "feng@example.com", "rep", "rep-east-1")
    lead_id = placed_lead(client, "lead@example.com", "east")
    token = sign_in(client, "feng@example.com")
    followed = client.post(
        "/v1/events",
        json={
            "type": "lead.followed_up",
            "lead_id": str(lead_id),
            "data": {"rep_id": "rep-east-1", "kind": "call"},
            "actor": {"kind": "user", "user_id": "someone-else"},
        },
        headers={"X-CSRF-Token": token},
    )
    # An envelope with an `actor` is refused: who posted is the server's to say.
    assert followed.status_code == 422
    followed = client.post(
        "/v1/events",
        json={
            "type": "lead.followed_up",
            "lead_id": str(lead_id),
            "data": {"rep_id": "rep-east-1", "kind": "call"},
        },
        headers={"X-CSRF-Token": token},
    )
    assert followed.status_code == 202, followed.text
    events = client.get(f"/v1/leads/{lead_id}/events").json()["events"]
    by_type = {e["type"]: e["actor"] for e in events}
    assert by_type["lead.captured"] == {"kind": "key", "key_id": "bootstrap"}
    assert by_type["lead.assigned"] is None  # decided by the rules
    assert by_type["lead.followed_up"] == {
        "kind": "user",
        "user_id": rep["user_id"],
        "person_id": "rep-east-1",
        "role": "rep",
    }
    # The library's own decoding reads the same as the fast decoder the timeline, the
    # projections and the dispatcher read with.
    stored = store_of(client).event_log.events.get(lead_id)
    assert [getattr(e, "actor", None) for e in stored] == [e["actor"] for e in events]
