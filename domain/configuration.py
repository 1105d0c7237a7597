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
RULESET_TRIALS_ID = uuid5(LEADFLOW_NAMESPACE, "stream:ruleset-trials")


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


class RulesetTrials(Aggregate):
    """Versions on trial (docs/trials.md): shadows and canaries started and stopped. A
    stream of its own, so that "the active version" stays the latest activation."""

    class Opened(Aggregate.Created):
        pass

    class ShadowStarted(Aggregate.Event):
        TYPE: ClassVar[str] = "ruleset.shadow_started"
        version: int
        started_by: str | None
        started_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.shadow = self.version

    class CanaryStarted(Aggregate.Event):
        TYPE: ClassVar[str] = "ruleset.canary_started"
        version: int
        share: float
        started_by: str | None
        started_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.canary = self.version

    class TrialStopped(Aggregate.Event):
        TYPE: ClassVar[str] = "ruleset.trial_stopped"
        version: int
        mode: str
        reason: str
        stopped_by: str | None
        stopped_at: datetime

        def apply(self, aggregate: Any) -> None:
            if self.mode == "shadow" and aggregate.shadow == self.version:
                aggregate.shadow = None
            if self.mode == "canary" and aggregate.canary == self.version:
                aggregate.canary = None

    def __init__(self) -> None:
        self.shadow: int | None = None
        self.canary: int | None = None

    @classmethod
    def open(cls) -> RulesetTrials:
        return cls._create(cls.Opened, id=RULESET_TRIALS_ID)

    def start_shadow(self, version: int, by: str | None, at: datetime) -> None:
        """Run `version` in shadow; a shadow already running is stopped (`replaced`)."""
        if self.shadow is not None:
            self.stop(self.shadow, "shadow", "replaced", by, at)
        self.trigger_event(self.ShadowStarted, version=version, started_by=by, started_at=at)

    def start_canary(self, version: int, share: float, by: str | None, at: datetime) -> None:
        """Run `version` as the canary; a canary already running is stopped (`replaced`)."""
        if self.canary is not None:
            self.stop(self.canary, "canary", "replaced", by, at)
        self.trigger_event(
            self.CanaryStarted, version=version, share=share, started_by=by, started_at=at
        )

    def stop(self, version: int, mode: str, reason: str, by: str | None, at: datetime) -> None:
        self.trigger_event(
            self.TrialStopped,
            version=version,
            mode=mode,
            reason=reason,
            stopped_by=by,
            stopped_at=at,
        )


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
