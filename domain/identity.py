"""Identity resolution: the normal forms of an email and a phone number, and the index ids
that map them to a lead. Pure: no I/O."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

import phonenumbers

LEADFLOW_NAMESPACE = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class BadIdentity(ValueError):
    """An email or phone number that cannot be normalised."""


def normalise_email(raw: str) -> str:
    """Trimmed and lower-cased; raises BadIdentity if it is not shaped like an address."""
    email = raw.strip().lower()
    if not _EMAIL.match(email):
        raise BadIdentity("not a valid email address")
    return email


def normalise_phone(raw: str, default_region: str) -> str:
    """E.164 (`+8613800138000`); numbers without a country code use `default_region`."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise BadIdentity(f"not a phone number ({exc})") from exc
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise BadIdentity(f"not a valid phone number for region {default_region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity_index_id(kind: str, value: str) -> UUID:
    """Deterministic id of the index record for one normalised identity (`email`/`phone`).

    Two concurrent captures of one identity both try to create this record; the store's
    unique (id, version) constraint lets exactly one win, so they yield one lead.
    """
    return uuid5(LEADFLOW_NAMESPACE, f"identity:{kind}:{value}")


def idempotency_record_id(key: str, scope: str | None = None) -> UUID:
    """The record of what a post with idempotency `key` was answered. Keys are scoped by
    the API key that sent them (`scope`, its stable id), so two integrations that both use
    `form-42` are two requests; `scope` None is the record id used before keys were
    scoped (still read, so a retry across the upgrade is still a duplicate)."""
    if scope is None:
        return uuid5(LEADFLOW_NAMESPACE, f"idempotency:{key}")
    return uuid5(LEADFLOW_NAMESPACE, f"idempotency:{len(scope)}:{scope}:{key}")


# Every event id leadflow makes for an event it records itself starts with this; a posted
# `event_id` may not (422), so no client can take the id of a decision still to come.
DECIDED_ID_PREFIX = "lf:"


def decided_event_id(name: str) -> str:
    """The deterministic id of an event leadflow records (a decision, a fired timer, a
    delivery): the same `name` — what the event answers — gives the same id on every
    retry. Events recorded before ids had a prefix carry `legacy_event_id(id)`."""
    return DECIDED_ID_PREFIX + str(uuid5(LEADFLOW_NAMESPACE, name))


def legacy_event_id(event_id: str) -> str:
    """The id an event recorded under `event_id`'s name had before decided ids were
    prefixed (a retry that straddles the upgrade must find it)."""
    return event_id.removeprefix(DECIDED_ID_PREFIX)


def campaign_id_for(campaign: str) -> UUID:
    return uuid5(LEADFLOW_NAMESPACE, f"campaign:{campaign}")
