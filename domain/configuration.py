"""Streams for what sales managers change without a deploy: published ruleset versions,
which version is active, and the sales directory. Each has one fixed stream id.

Stored events name their class by topic (module and class). This module was
`domain.rulebook` until the packages moved (issue #10): the log still holds events under
that name, so the old module name is registered as this module's alias."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, ClassVar
from uuid import uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.identity import LEADFLOW_NAMESPACE

# Events and snapshots stored as `domain.rulebook:<Class>` resolve to the classes here.
register_topic("domain.rulebook", sys.modules[__name__])

RULESET_CATALOG_ID = uuid5(LEADFLOW_NAMESPACE, "stream:ruleset-catalog")
RULESET_ACTIVATIONS_ID = uuid5(LEADFLOW_NAMESPACE, "stream:ruleset-activations")
SALES_DIRECTORY_ID = uuid5(LEADFLOW_NAMESPACE, "stream:sales-directory")


class RulesetCatalog(Aggregate):
    """Every published ruleset version; a version's number is its event's stream position
    minus one (the first event opens the catalog). Versions are immutable."""

    class Opened(Aggregate.Created):
        pass

    class Published(Aggregate.Event):
        TYPE: ClassVar[str] = "ruleset.published"
        version: int
        document: dict[str, Any]
        published_by: str | None
        published_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.latest_version = self.version

    def __init__(self) -> None:
        self.latest_version = 0

    @classmethod
    def open(cls) -> RulesetCatalog:
        return cls._create(cls.Opened, id=RULESET_CATALOG_ID)

    def publish(self, document: dict[str, Any], by: str | None, at: datetime) -> int:
        version = self.latest_version + 1
        self.trigger_event(
            self.Published, version=version, document=document, published_by=by, published_at=at
        )
        return version


class RulesetActivations(Aggregate):
    """Which version is active; its latest event answers "active now"."""

    class Opened(Aggregate.Created):
        pass

    class Activated(Aggregate.Event):
        TYPE: ClassVar[str] = "ruleset.activated"
        version: int
        activated_by: str | None
        activated_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.active_version = self.version

    def __init__(self) -> None:
        self.active_version: int | None = None

    @classmethod
    def open(cls) -> RulesetActivations:
        return cls._create(cls.Opened, id=RULESET_ACTIVATIONS_ID)

    def activate(self, version: int, by: str | None, at: datetime) -> None:
        self.trigger_event(self.Activated, version=version, activated_by=by, activated_at=at)


class SalesDirectory(Aggregate):
    """Teams, reps, people and channels; each replacement carries the whole document."""

    class Opened(Aggregate.Created):
        pass

    class Replaced(Aggregate.Event):
        TYPE: ClassVar[str] = "directory.replaced"
        document: dict[str, Any]
        replaced_by: str | None
        replaced_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.document = self.document

    def __init__(self) -> None:
        self.document: dict[str, Any] | None = None

    @classmethod
    def open(cls) -> SalesDirectory:
        return cls._create(cls.Opened, id=SALES_DIRECTORY_ID)

    def replace(self, document: dict[str, Any], by: str | None, at: datetime) -> None:
        self.trigger_event(self.Replaced, document=document, replaced_by=by, replaced_at=at)
