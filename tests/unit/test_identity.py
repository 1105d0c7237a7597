import pytest

from domain.identity import BadIdentity, identity_index_id, normalise_email, normalise_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("bob+promo@example.co.uk", "bob+promo@example.co.uk"),
    ],
)
def test_emails_are_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@b", "two@@example.com", "sp ace@example.com"])
def test_malformed_emails_are_rejected(raw: str) -> None:
    with pytest.raises(BadIdentity):
        normalise_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86 138-0013-8000", "US", "+8613800138000"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", "CN", "+14155552671"),
    ],
)
def test_phones_become_e164_with_the_default_region(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12", "not a number", "+86 123"])
def test_invalid_phones_are_rejected(raw: str) -> None:
    with pytest.raises(BadIdentity):
        normalise_phone(raw, "CN")


def test_one_identity_has_one_index_id_and_kinds_do_not_collide() -> None:
    assert identity_index_id("email", "a@b.co") == identity_index_id("email", "a@b.co")
    assert identity_index_id("email", "x") != identity_index_id("phone", "x")
