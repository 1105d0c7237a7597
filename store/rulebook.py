"""Rulesets and the sales directory on the log: publish, activate (and roll back), read.

Versions are immutable; reading the active version or the current directory reads only
the latest event of a small stream, and compiled rulesets are cached per version, so the
decisions activity can look them up on every trigger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.configuration import (
    RULESET_ACTIVATIONS_ID,
    RULESET_CATALOG_ID,
    RULESET_TRIALS_ID,
    SALES_DIRECTORY_ID,
    RulesetActivations,
    RulesetCatalog,
    RulesetTrials,
    SalesDirectory,
)
from domain.directory import Directory, parse_directory
from domain.errors import Conflict, DomainError
from domain.lifecycle import ActiveRuleset
from domain.trials import CANARY, NO_TRIALS, SHADOW, Trial, Trials, TrialTimeline
from rules.compile import compile_ruleset
from rules.model import Ruleset
from rules.validation import InvalidRuleset, parse_ruleset
from store.log import EventLog
from store.recorder import LogRecorder

# Version N is the event at position N + 1 of the catalog's stream, a 64-bit integer in
# every store: no larger number can be a version.
MAX_VERSION = 2**63 - 2


class RulesetNotFound(DomainError):
    code = "ruleset_not_found"


class RulesetCannotBeActivated(Conflict):
    code = "ruleset_invalid"


class RulesetIsActive(Conflict):
    """A trial of the version that is active already."""

    code = "ruleset_is_active"


class RulesetOnTrial(Conflict):
    """A version already on trial in the other mode (shadow and canary at once)."""

    code = "ruleset_on_trial"


class RulesetNotOnTrial(Conflict):
    code = "ruleset_not_on_trial"


@dataclass(frozen=True)
class PublishedRuleset:
    version: int
    name: str
    document: dict[str, Any]
    published_by: str | None
    published_at: datetime

    def summary(self, active_version: int | None, trials: Trials = NO_TRIALS) -> dict[str, Any]:
        mode = "active" if self.version == active_version else trials.mode_of(self.version)
        return {
            "version": self.version,
            "name": self.name,
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat(),
            "active": self.version == active_version,
            "mode": mode,
        }


def _bundled(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("rules").joinpath(name).read_text())
    return loaded


def default_ruleset_document() -> dict[str, Any]:
    return _bundled("default_ruleset.json")


def default_directory_document() -> dict[str, Any]:
    return _bundled("default_directory.json")


EMPTY_DIRECTORY = Directory(teams=[], reps=[])


class Rulebook:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._compiled: dict[int, ActiveRuleset] = {}
        self._directory: tuple[int, Directory] | None = None
        # (activations stream version, active version): what `active_version` last read.
        self._activation: tuple[int, int | None] | None = None
        # (trials stream version, trials after each of its events): what `trials` last read.
        self._trials: tuple[int, list[tuple[datetime, Trials]]] | None = None

    def _latest(self, stream_id: Any) -> Any | None:
        stored = self.log.recorder.select_events(stream_id, desc=True, limit=1)
        return self.log.mapper.to_domain_event(stored[0]) if stored else None

    def _stream_version(self, stream_id: Any) -> int | None:
        recorder = self.log.recorder
        assert isinstance(recorder, LogRecorder)
        return recorder.stream_version(stream_id)

    # -- directory -------------------------------------------------------------------

    def directory(self) -> Directory:
        """The current sales directory (empty before the first PUT)."""
        return self.stored_directory() or EMPTY_DIRECTORY

    def stored_directory(self) -> Directory | None:
        """The current sales directory, or None if none was ever stored."""
        # Every decision asks: the stream's version alone tells whether the directory
        # parsed last time is still the current one (decoding its document is not free).
        stored = self._stream_version(SALES_DIRECTORY_ID)
        if stored is None:
            return None
        if self._directory is None or self._directory[0] != stored:
            latest = self._latest(SALES_DIRECTORY_ID)
            if not isinstance(latest, SalesDirectory.Replaced):
                return None
            self._directory = (latest.originator_version, parse_directory(latest.document))
        return self._directory[1]

    def directory_document(self) -> dict[str, Any]:
        latest = self._latest(SALES_DIRECTORY_ID)
        if isinstance(latest, SalesDirectory.Replaced):
            return latest.document
        return EMPTY_DIRECTORY.model_dump(mode="json")

    def replace_directory(self, document: object, by: str | None, at: datetime) -> Directory:
        directory = parse_directory(document)  # raises InvalidDirectory
        normalised = directory.model_dump(mode="json")
        for _ in range(10):
            try:
                stream = self._get_or_open(SALES_DIRECTORY_ID, SalesDirectory.open)
                stream.replace(normalised, by, at)
                self.log.save(stream)
                return directory
            except IntegrityError:
                continue
        raise RuntimeError("could not replace the directory: too many concurrent writers")

    # -- rulesets --------------------------------------------------------------------

    def publish(self, document: object, by: str | None, at: datetime) -> int:
        """Validate against the current directory and store a new immutable version."""
        ruleset = parse_ruleset(document, self.directory())
        stored = ruleset.model_dump(mode="json", by_alias=True, exclude_none=True)
        for _ in range(10):
            try:
                catalog = self._get_or_open(RULESET_CATALOG_ID, RulesetCatalog.open)
                version = catalog.publish(stored, by, at)
                self.log.save(catalog)
                return version
            except IntegrityError:
                continue
        raise RuntimeError("could not publish: too many concurrent writers")

    def get(self, version: int) -> PublishedRuleset:
        """The published version; RulesetNotFound for any other number, however large."""
        # Checked first: a number past MAX_VERSION overflows the stores' query.
        if not 1 <= version <= MAX_VERSION:
            raise RulesetNotFound(f"no ruleset version {version}")
        stored = self.log.recorder.select_events(
            RULESET_CATALOG_ID, gt=version, lte=version + 1, limit=1
        )
        event = self.log.mapper.to_domain_event(stored[0]) if stored else None
        if not isinstance(event, RulesetCatalog.Published):
            raise RulesetNotFound(f"no ruleset version {version}")
        return _published(event)

    def versions(self) -> list[PublishedRuleset]:
        stored = self.log.recorder.select_events(RULESET_CATALOG_ID)
        events = [self.log.mapper.to_domain_event(s) for s in stored]
        return [_published(e) for e in events if isinstance(e, RulesetCatalog.Published)]

    def active_version(self) -> int | None:
        stored = self._stream_version(RULESET_ACTIVATIONS_ID)
        if stored is None:
            return None
        if self._activation is None or self._activation[0] != stored:
            latest = self._latest(RULESET_ACTIVATIONS_ID)
            active = latest.version if isinstance(latest, RulesetActivations.Activated) else None
            self._activation = (stored, active)
        return self._activation[1]

    def activate(self, version: int, by: str | None, at: datetime) -> None:
        """Make `version` active (also how a rollback is done, and how a trial is promoted:
        a trial of `version` ends with it, in the same commit). It is validated again
        against the directory as it is now: an invalid ruleset never becomes active."""
        self._check_valid_now(version)
        for _ in range(10):
            try:
                stream = self._get_or_open(RULESET_ACTIVATIONS_ID, RulesetActivations.open)
                stream.activate(version, by, at)
                changed = [stream]
                if self.trials().mode_of(version) is not None:
                    trials = self._get_or_open(RULESET_TRIALS_ID, RulesetTrials.open)
                    for mode, running in ((SHADOW, trials.shadow), (CANARY, trials.canary)):
                        if running == version:
                            trials.stop(version, mode, "promoted", by, at)
                    changed.append(trials)
                self.log.save(*changed)
                return
            except IntegrityError:
                continue
        raise RuntimeError("could not activate: too many concurrent writers")

    def _check_valid_now(self, version: int) -> None:
        published = self.get(version)
        try:
            parse_ruleset(published.document, self.directory())
        except InvalidRuleset as invalid:
            raise RulesetCannotBeActivated(
                f"version {version} is not valid against the current directory",
                invalid.details,
            ) from invalid

    # -- trials (docs/trials.md) -----------------------------------------------------

    def _trial_history(self) -> list[tuple[datetime, Trials]]:
        """The trials as they were after each trial event, with its time (cached until
        the stream grows; the stream is small: a few events per trial)."""
        stored = self._stream_version(RULESET_TRIALS_ID)
        if stored is None:
            return []
        if self._trials is None or self._trials[0] != stored:
            events = [
                self.log.mapper.to_domain_event(s)
                for s in self.log.recorder.select_events(RULESET_TRIALS_ID)
            ]
            self._trials = (stored, _fold_trials(events))
        return self._trials[1]

    def trials(self) -> Trials:
        """The trials running now."""
        history = self._trial_history()
        return history[-1][1] if history else NO_TRIALS

    def trial_timeline(self) -> TrialTimeline:
        """Which trials ran when, for a replay (`domain.trials.TrialTimeline`)."""
        return TrialTimeline(self._trial_history())

    def trial_rulesets(self) -> tuple[Trials, dict[int, ActiveRuleset]]:
        """The trials running now, with their versions compiled."""
        trials = self.trials()
        return trials, {t.version: self.version(t.version) for t in trials.running()}

    def start_shadow(self, version: int, by: str | None, at: datetime) -> Trial:
        """Run `version` in shadow (replacing a running shadow)."""
        self._check_trial(version, SHADOW)
        self._change_trials(lambda trials: trials.start_shadow(version, by, at))
        shadow = self.trials().shadow
        assert shadow is not None
        return shadow

    def start_canary(self, version: int, share: float, by: str | None, at: datetime) -> Trial:
        """Run `version` as the canary for `share` of new leads (replacing a running one)."""
        self._check_trial(version, CANARY)
        self._change_trials(lambda trials: trials.start_canary(version, share, by, at))
        canary = self.trials().canary
        assert canary is not None
        return canary

    def stop_trial(self, version: int, by: str | None, at: datetime) -> None:
        """End `version`'s trial: canary leads go back to the active version at their
        next trigger. RulesetNotOnTrial when it is on none."""
        self.get(version)
        mode = self.trials().mode_of(version)
        if mode is None:
            raise RulesetNotOnTrial(f"version {version} is not on trial")
        self._change_trials(lambda trials: trials.stop(version, mode, "stopped", by, at))

    def promote(self, version: int, by: str | None, at: datetime) -> None:
        """Activate the version on trial, ending its trial (one commit)."""
        self.get(version)
        if self.trials().mode_of(version) is None:
            raise RulesetNotOnTrial(f"version {version} is not on trial")
        self.activate(version, by, at)

    def _check_trial(self, version: int, mode: str) -> None:
        self._check_valid_now(version)
        if version == self.active_version():
            raise RulesetIsActive(f"version {version} is the active version")
        running = self.trials().mode_of(version)
        if running is not None and running != mode:
            raise RulesetOnTrial(f"version {version} is already on trial as the {running}")

    def _change_trials(self, change: Any) -> None:
        for _ in range(10):
            try:
                trials = self._get_or_open(RULESET_TRIALS_ID, RulesetTrials.open)
                change(trials)
                self.log.save(trials)
                return
            except IntegrityError:
                continue
        raise RuntimeError("could not change the trials: too many concurrent writers")

    def version(self, version: int) -> ActiveRuleset:
        """A published version, parsed and compiled (cached: versions are immutable)."""
        if version not in self._compiled:
            ruleset = Ruleset.model_validate(self.get(version).document)
            self._compiled[version] = ActiveRuleset(version, ruleset, compile_ruleset(ruleset))
        return self._compiled[version]

    def active(self) -> ActiveRuleset:
        """The active ruleset, compiled (an empty one before any activation)."""
        version = self.active_version()
        if version is None:
            return ActiveRuleset(None, _EMPTY_RULESET, compile_ruleset(_EMPTY_RULESET))
        return self.version(version)

    def install_defaults(self, at: datetime) -> None:
        """On a new store: the demo directory and the built-in ruleset, active as v1."""
        if self._latest(SALES_DIRECTORY_ID) is None:
            self.replace_directory(default_directory_document(), "leadflow", at)
        if self._latest(RULESET_CATALOG_ID) is None:
            try:
                version = self.publish(default_ruleset_document(), "leadflow", at)
            except IntegrityError:
                return  # another process installed them at the same moment
            if self.active_version() is None:
                self.activate(version, "leadflow", at)

    def _get_or_open(self, stream_id: Any, open_stream: Any) -> Any:
        try:
            return self.log.repository.get(stream_id)
        except AggregateNotFoundError:
            return open_stream()


_EMPTY_RULESET = Ruleset(name="empty")


def _fold_trials(events: list[Any]) -> list[tuple[datetime, Trials]]:
    history: list[tuple[datetime, Trials]] = []
    shadow: Trial | None = None
    canary: Trial | None = None
    for event in events:
        if isinstance(event, RulesetTrials.ShadowStarted):
            at = event.started_at
            shadow = Trial(SHADOW, event.version, at, event.started_by)
        elif isinstance(event, RulesetTrials.CanaryStarted):
            at = event.started_at
            canary = Trial(CANARY, event.version, at, event.started_by, event.share)
        elif isinstance(event, RulesetTrials.TrialStopped):
            at = event.stopped_at
            if event.mode == SHADOW and shadow is not None and shadow.version == event.version:
                shadow = None
            if event.mode == CANARY and canary is not None and canary.version == event.version:
                canary = None
        else:
            continue
        history.append((at, Trials(shadow, canary)))
    return history


def _published(event: RulesetCatalog.Published) -> PublishedRuleset:
    return PublishedRuleset(
        version=event.version,
        name=str(event.document.get("name", "")),
        document=event.document,
        published_by=event.published_by,
        published_at=event.published_at,
    )
