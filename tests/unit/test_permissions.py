"""What each caller may do (issue #19): role → scopes, key scopes, the password rules, the
CSRF check of cookie-authenticated requests, session expiry, and user requests' checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.sessions import actor_of, caller_of, csrf_ok
from domain.directory import Directory, parse_directory
from domain.permissions import (
    SessionTimes,
    password_faults,
    scopes_of_key,
    scopes_of_role,
)
from domain.users import (
    InvalidUserRequest,
    User,
    parse_new_user,
    parse_preferences,
    parse_user_changes,
)

DEMO = Path(__file__).parents[2] / "rules" / "default_directory.json"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def directory() -> Directory:
    return parse_directory(json.loads(DEMO.read_text(encoding="utf-8")))


def test_roles_grant_scopes_as_docs_access_md_says() -> None:
    assert scopes_of_role("rep") == {"read", "ingest"}
    assert scopes_of_role("manager") == {"read", "ingest", "reports", "rules"}
    assert scopes_of_role("director") == {"read", "ingest", "reports", "rules"}
    assert scopes_of_role("admin") == {"read", "ingest", "reports", "rules", "admin"}


def test_keys_keep_what_they_could_do_before_people_signed_in() -> None:
    assert scopes_of_key(["read"]) == {"read", "reports"}
    assert scopes_of_key(["ingest"]) == {"ingest"}
    assert scopes_of_key(["admin"]) == {"read", "ingest", "reports", "rules", "admin"}
    assert scopes_of_key(["ingest", "read"]) == {"read", "ingest", "reports"}


@pytest.mark.parametrize(
    ("password", "ok"),
    [("", False), ("seven77", False), ("eight888", True), ("密码" * 4, True), ("x" * 256, True)],
)
def test_a_password_has_8_to_256_characters(password: str, ok: bool) -> None:
    assert (password_faults(password) == []) is ok


def test_a_password_that_is_not_text_is_refused_by_its_pointer() -> None:
    assert [f.path for f in password_faults(12345678, "/password")] == ["/password"]


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_need_no_csrf_token(method: str) -> None:
    assert csrf_ok(method, None, "token")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "delete"])
def test_unsafe_methods_need_the_sessions_exact_token(method: str) -> None:
    assert csrf_ok(method, "token-123", "token-123")
    assert not csrf_ok(method, None, "token-123")
    assert not csrf_ok(method, "", "token-123")
    assert not csrf_ok(method, "token-124", "token-123")
    assert not csrf_ok(method, "token-1234", "token-123")


def test_a_session_ends_12_hours_after_its_last_use_or_7_days_after_sign_in() -> None:
    fresh = SessionTimes(created_at=NOW, last_seen_at=NOW)
    assert fresh.is_live(NOW + timedelta(hours=11, minutes=59))
    assert not fresh.is_live(NOW + timedelta(hours=12))
    used = SessionTimes(created_at=NOW, last_seen_at=NOW + timedelta(days=6, hours=23))
    assert used.is_live(NOW + timedelta(days=6, hours=23, minutes=59))
    assert not used.is_live(NOW + timedelta(days=7))
    assert used.expires_at() == NOW + timedelta(days=7)


def test_a_signed_in_rep_is_a_caller_with_their_scope_of_leads(directory: Directory) -> None:
    user = User("usr_1", "li@example.com", "Li Wei", "rep", "rep-east-1", None, None, False, NOW)
    caller = caller_of(user, directory)
    assert (caller.key_id, caller.role, caller.person_id) == ("user:usr_1", "rep", "rep-east-1")
    assert caller.scopes == {"read", "ingest"}
    assert caller.lead_scope.allows(owner="rep-east-1", team="east", in_pool=False)
    assert not caller.lead_scope.allows(owner="rep-east-2", team="east", in_pool=False)
    assert actor_of(caller) == {
        "kind": "user",
        "user_id": "usr_1",
        "person_id": "rep-east-1",
        "role": "rep",
    }
    assert user.team(directory) == "east"


def test_a_new_user_is_checked_against_the_directory(directory: Directory) -> None:
    new = parse_new_user(
        {"login": " Liu@Example.com ", "role": "manager", "person_id": "mgr-east"},
        directory,
        generated="generated-pass",
    )
    assert (new.login, new.name, new.password) == ("liu@example.com", "Liu Yang", "generated-pass")
    with pytest.raises(InvalidUserRequest) as refused:
        parse_new_user(
            {"login": "a", "role": "director", "person_id": "ghost", "locale": "fr"},
            directory,
            generated="generated-pass",
        )
    assert sorted(e.path for e in refused.value.errors) == ["/locale", "/person_id"]


def test_an_admin_needs_no_person_but_a_rep_keeps_one(directory: Directory) -> None:
    admin = parse_new_user({"login": "root", "role": "admin"}, directory, generated="x" * 20)
    assert admin.person_id is None
    rep = User("usr_2", "r", "R", "rep", "rep-west-1", None, None, False, NOW)
    with pytest.raises(InvalidUserRequest) as refused:
        parse_user_changes({"person_id": None}, directory, rep)
    assert [e.path for e in refused.value.errors] == ["/person_id"]
    assert parse_user_changes({"role": "admin", "person_id": None}, directory, rep) == {
        "role": "admin",
        "person_id": None,
    }


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_preferences_take_iana_time_zones(zone: str) -> None:
    assert parse_preferences({"time_zone": zone, "locale": "zh-CN"}) == {
        "time_zone": zone,
        "locale": "zh-CN",
    }


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", 8])
def test_preferences_refuse_what_is_not_a_time_zone(zone: object) -> None:
    with pytest.raises(InvalidUserRequest) as refused:
        parse_preferences({"time_zone": zone})
    assert [e.path for e in refused.value.errors] == ["/time_zone"]
