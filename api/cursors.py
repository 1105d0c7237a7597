"""Paging cursors: a page's place as URL-safe text the client passes back unchanged (JSON in
unpadded base64). Each list decides what its place holds and checks what comes back."""

from __future__ import annotations

import base64
import json
from typing import Any

from api.errors import ApiError, invalid_query

NOT_OURS = "not a cursor from this API: pass next_cursor back unchanged"


def pack(place: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(place).encode()).decode().rstrip("=")


def unpack(cursor: str) -> Any:
    """The place `pack` wrote; ValueError when `cursor` is not base64 of JSON."""
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def bad_cursor(message: str = NOT_OURS) -> ApiError:
    """The 422 naming `/cursor`."""
    return invalid_query(("/cursor", message))
