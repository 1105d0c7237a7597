"""Typed domain errors. Raised by the pure core, mapped to HTTP status codes once, in api/."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    code = "domain_error"

    def __init__(self, message: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class FieldError:
    """One bad field: a JSON Pointer into the request body and what is wrong with it."""

    path: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "message": self.message}


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_pointer(parts: Iterable[str | int]) -> str:
    """The JSON Pointer (RFC 6901) of a path into a document. A lone surrogate in a key
    shows as U+FFFD: the pointer goes out in a UTF-8 answer, which cannot carry it."""
    pointer = "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return _LONE_SURROGATE.sub("\ufffd", pointer)


@dataclass
class InvalidDocument(DomainError):
    """A posted document with bad fields (HTTP 422): every one, by JSON Pointer."""

    errors: list[FieldError] = field(default_factory=list)
    code = "invalid_document"
    what = "document"

    def __post_init__(self) -> None:
        summary = "; ".join(f"{e.path}: {e.message}" for e in self.errors[:3])
        super().__init__(f"invalid {self.what}: {summary}", [e.as_dict() for e in self.errors])


@dataclass
class InvalidEvent(InvalidDocument):
    """The request does not describe a valid event; nothing was appended."""

    code = "invalid_event"
    what = "event"

    def prefixed(self, prefix: str) -> InvalidEvent:
        return InvalidEvent([FieldError(prefix + e.path, e.message) for e in self.errors])


class LeadNotFound(DomainError):
    code = "lead_not_found"


class Conflict(DomainError):
    """The event is valid but contradicts the lead's current state (HTTP 409)."""

    code = "conflict"


class StageWouldMoveBackward(Conflict):
    code = "stage_would_move_backward"


class LeadNotInPool(Conflict):
    code = "lead_not_in_pool"


class NotLeadOwner(Conflict):
    code = "not_lead_owner"


class LeadClosed(Conflict):
    code = "lead_closed"


class RepAtCapacity(Conflict):
    code = "rep_at_capacity"


class RepInactive(Conflict):
    code = "rep_inactive"


class ClaimCooldown(Conflict):
    code = "claim_cooldown"


class DailyClaimLimitReached(Conflict):
    code = "daily_claim_limit_reached"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class EventIdInUse(Conflict):
    """The lead already has an event with this id, posted with another API key."""

    code = "event_id_in_use"


class LeadAttributesFull(Conflict):
    """A later capture would grow the lead's merged attributes past their bounds
    (`domain.limits`); nothing was appended."""

    code = "lead_attributes_full"


class DoNotContactUnchanged(Conflict):
    """Setting the do-not-contact flag of a lead that has it, or lifting it from one that
    has not; nothing was appended."""

    code = "do_not_contact_unchanged"
