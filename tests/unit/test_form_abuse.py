"""The hosted forms' fill tokens and rate limit (intake.abuse), on given clocks."""

from __future__ import annotations

from intake.abuse import (
    TOKEN_MAX_AGE_SECONDS,
    SubmissionRateLimit,
    TokenVerdict,
    check_token,
    issue_token,
)

SECRET = b"secret"
NOW = 1_800_000_000.0


def test_a_token_is_valid_for_its_form_between_the_fill_time_and_its_age() -> None:
    token = issue_token(SECRET, "contact", NOW)
    assert check_token(SECRET, "contact", token, NOW + 3, 3) is TokenVerdict.VALID
    assert check_token(SECRET, "contact", token, NOW + 2.9, 3) is TokenVerdict.TOO_FAST
    late = NOW + TOKEN_MAX_AGE_SECONDS + 1
    assert check_token(SECRET, "contact", token, late, 3) is TokenVerdict.EXPIRED
    assert check_token(SECRET, "other", token, NOW + 5, 3) is TokenVerdict.FORGED
    assert check_token(b"another secret", "contact", token, NOW + 5, 3) is TokenVerdict.FORGED


def test_tokens_differ_and_altered_ones_are_forged() -> None:
    first, second = issue_token(SECRET, "f", NOW), issue_token(SECRET, "f", NOW)
    assert first != second  # two visitors in one second: two submissions
    issued, nonce, signature = first.split(".")
    for altered in (
        f"{int(issued) - 60}.{nonce}.{signature}",  # backdated to skip the fill time
        f"{issued}.{nonce}0.{signature}",
        f"{issued}.{nonce}",
        "9" * 40 + f".{nonce}.{signature}",
        "",
        None,
        12,
    ):
        verdict = check_token(SECRET, "f", altered, NOW + 60, 0)
        assert verdict in (TokenVerdict.FORGED, TokenVerdict.MISSING), altered
        assert verdict.spam_reason == "token"
    future = issue_token(SECRET, "f", NOW + 3600)
    assert check_token(SECRET, "f", future, NOW, 0) is TokenVerdict.FORGED


def test_the_rate_limit_refuses_an_address_until_its_oldest_submission_leaves_the_window() -> None:
    now = [0.0]
    limit = SubmissionRateLimit(limit=3, window_seconds=60, clock=lambda: now[0])
    assert [limit.admit("a") for _ in range(3)] == [None, None, None]
    now[0] = 10.0
    assert limit.admit("a") == 50
    assert limit.admit("b") is None  # others are not affected
    now[0] = 60.5  # all three left the window: three more, then refused for a minute
    assert [limit.admit("a") for _ in range(4)] == [None, None, None, 60]
