"""Saved views of the lead list (docs/leads-search.md): a name and the list's query (its
search, filters and sort, as `GET /v1/leads` takes them), kept per owner — a signed-in
person (`user:<user_id>`) or an API key (`key:<key_id>`). Nobody sees another owner's
views; saving under a name the owner already uses replaces that view's query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from store.times import utc

MAX_NAME_LENGTH = 100
# Views one owner may keep: a list a person picks from, not a store.
MAX_VIEWS_PER_OWNER = 200

metadata = MetaData()

saved_views = Table(
    "saved_views",
    metadata,
    Column("view_id", String(36), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("name", String(MAX_NAME_LENGTH), nullable=False),
    Column("query", Text(), nullable=False),  # JSON object of list parameters
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("owner", "name", name="uq_saved_views_owner_name"),
)


@dataclass(frozen=True)
class SavedView:
    view_id: str
    name: str
    query: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "view_id": self.view_id,
            "name": self.name,
            "query": self.query,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class TooManyViews(Exception):
    """The owner keeps MAX_VIEWS_PER_OWNER views already."""


class SavedViews:
    """The `saved_views` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, owner: str) -> list[SavedView]:
        """The owner's views by name."""
        table = saved_views
        query = select(table).where(table.c.owner == owner).order_by(table.c.name)
        with self.engine.connect() as conn:
            return [_view(row) for row in conn.execute(query).mappings()]

    def save(
        self, owner: str, name: str, query: dict[str, Any], now: datetime
    ) -> tuple[SavedView, bool]:
        """Keep `query` under `name` for `owner`: a new view (True), or the owner's view of
        that name with its query replaced (False). TooManyViews past the limit."""
        table = saved_views
        stored = json.dumps(query, sort_keys=True, ensure_ascii=False)
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(table.c.view_id).where(table.c.owner == owner, table.c.name == name)
            ).scalar()
            if existing is not None:
                conn.execute(
                    update(table)
                    .where(table.c.view_id == existing)
                    .values(query=stored, updated_at=now)
                )
                view_id, created = existing, False
            else:
                owned = select(table.c.view_id).where(table.c.owner == owner)
                count = len(conn.execute(owned).all())
                if count >= MAX_VIEWS_PER_OWNER:
                    raise TooManyViews(f"at most {MAX_VIEWS_PER_OWNER} saved views each")
                view_id, created = str(uuid4()), True
                conn.execute(
                    insert(table).values(
                        view_id=view_id,
                        owner=owner,
                        name=name,
                        query=stored,
                        created_at=now,
                        updated_at=now,
                    )
                )
            row = conn.execute(select(table).where(table.c.view_id == view_id)).mappings().one()
        return _view(row), created

    def delete(self, owner: str, view_id: str) -> bool:
        """Delete the owner's view; False when the owner has no view of that id."""
        table = saved_views
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(table).where(table.c.view_id == view_id, table.c.owner == owner)
            )
        return gone.rowcount == 1


def _view(row: Any) -> SavedView:
    return SavedView(
        view_id=row["view_id"],
        name=row["name"],
        query=json.loads(row["query"]),
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )
