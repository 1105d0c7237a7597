"""Hosted forms on the log, like rulesets: each form is a stream of immutable published
versions and activations (its latest activation says which version the public page
serves), and one index stream lists the forms. Nothing here is in another table.

The first version of a new form is activated as it is published (a form nobody can open
serves nobody); later versions wait for `activate`, which is also how a rollback is done.
Reading the active version costs one primary-key read of the form's stream version while
the form is unchanged: the parsed form is cached per stream version.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError
from domain.identity import LEADFLOW_NAMESPACE
from intake.form_document import FORM_ID, Form, parse_form, stored_document
from store.log import EventLog
from store.recorder import LogRecorder

FORM_INDEX_ID = uuid5(LEADFLOW_NAMESPACE, "stream:form-index")
MAX_VERSION = 2**31


class FormNotFound(DomainError):
    code = "form_not_found"


class FormVersionNotFound(DomainError):
    code = "form_version_not_found"


def form_stream_id(form_id: str) -> UUID:
    return uuid5(LEADFLOW_NAMESPACE, f"stream:form:{form_id}")


class HostedForm(Aggregate):
    """One form: its published versions (numbered from 1) and which one is active."""

    class Opened(Aggregate.Created):
        form_id: str

    class Published(Aggregate.Event):
        TYPE: ClassVar[str] = "form.published"
        version: int
        document: dict[str, Any]
        published_by: str | None
        published_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.versions[self.version] = self

    class Activated(Aggregate.Event):
        TYPE: ClassVar[str] = "form.activated"
        version: int
        activated_by: str | None
        activated_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.active_version = self.version

    def __init__(self, form_id: str) -> None:
        self.form_id = form_id
        self.versions: dict[int, HostedForm.Published] = {}
        self.active_version: int | None = None

    @classmethod
    def open(cls, form_id: str) -> HostedForm:
        return cls._create(cls.Opened, id=form_stream_id(form_id), form_id=form_id)

    def publish(self, document: dict[str, Any], by: str | None, at: datetime) -> int:
        version = len(self.versions) + 1
        self.trigger_event(
            self.Published, version=version, document=document, published_by=by, published_at=at
        )
        return version

    def activate(self, version: int, by: str | None, at: datetime) -> None:
        self.trigger_event(self.Activated, version=version, activated_by=by, activated_at=at)


class FormIndex(Aggregate):
    """Every form id, in the order the forms were created."""

    class Opened(Aggregate.Created):
        pass

    class Registered(Aggregate.Event):
        TYPE: ClassVar[str] = "form.registered"
        form_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.form_ids.append(self.form_id)

    def __init__(self) -> None:
        self.form_ids: list[str] = []

    @classmethod
    def open(cls) -> FormIndex:
        return cls._create(cls.Opened, id=FORM_INDEX_ID)

    def register(self, form_id: str) -> None:
        self.trigger_event(self.Registered, form_id=form_id)


@dataclass(frozen=True)
class PublishedForm:
    form_id: str
    version: int
    document: dict[str, Any]
    published_by: str | None
    published_at: datetime

    def summary(self, active_version: int | None) -> dict[str, Any]:
        return {
            "form_id": self.form_id,
            "version": self.version,
            "name": str(self.document.get("name") or self.form_id),
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat(),
            "active": self.version == active_version,
        }


@dataclass(frozen=True)
class ActiveForm:
    """The version a form's public page serves, parsed."""

    version: int
    form: Form


class FormBook:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        # form id → (stream version, active form): what `active` parsed last.
        self._active: dict[str, tuple[int, ActiveForm]] = {}

    def publish(self, document: object, by: str | None, at: datetime) -> tuple[str, int]:
        """Validate and store a new immutable version of the form the document names (a
        new form, with a generated id, when it names none); raises InvalidForm."""
        form = parse_form(document)
        assert isinstance(document, dict)
        form_id = form.id or f"form-{secrets.token_hex(4)}"
        stored = stored_document(document, form_id)
        for _ in range(10):
            try:
                hosted = self._get(form_id)
                if hosted is None:
                    hosted = HostedForm.open(form_id)
                    index = self._index()
                    index.register(form_id)
                    version = hosted.publish(stored, by, at)
                    hosted.activate(version, by, at)
                    self.log.save(hosted, index)
                else:
                    version = hosted.publish(stored, by, at)
                    self.log.save(hosted)
                return form_id, version
            except IntegrityError:
                continue
        raise RuntimeError("could not publish: too many concurrent writers")

    def _get(self, form_id: str) -> HostedForm | None:
        if not FORM_ID.fullmatch(form_id):
            return None  # no stream can have that id: nothing to look up
        try:
            hosted: Any = self.log.repository.get(form_stream_id(form_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(hosted, HostedForm)
        return hosted

    def _index(self) -> FormIndex:
        try:
            index: Any = self.log.repository.get(FORM_INDEX_ID)
        except AggregateNotFoundError:
            return FormIndex.open()
        assert isinstance(index, FormIndex)
        return index

    def hosted(self, form_id: str) -> HostedForm:
        hosted = self._get(form_id)
        if hosted is None:
            raise FormNotFound(f"no form {form_id!r}")
        return hosted

    def version(self, form_id: str, version: int) -> PublishedForm:
        hosted = self.hosted(form_id)
        published = hosted.versions.get(version) if 1 <= version <= MAX_VERSION else None
        if published is None:
            raise FormVersionNotFound(f"form {form_id!r} has no version {version}")
        return _published(form_id, published)

    def versions(self, form_id: str) -> tuple[int | None, list[PublishedForm]]:
        """The form's active version and every published version, oldest first."""
        hosted = self.hosted(form_id)
        return hosted.active_version, [_published(form_id, p) for p in hosted.versions.values()]

    def forms(self) -> list[dict[str, Any]]:
        """Each form: its id, name, active version and latest version."""
        listed = []
        for form_id in self._index().form_ids:
            hosted = self.hosted(form_id)
            latest = max(hosted.versions)
            active = hosted.active_version
            shown = hosted.versions[active or latest]
            listed.append(
                {
                    "form_id": form_id,
                    "name": str(shown.document.get("name") or form_id),
                    "active_version": active,
                    "latest_version": latest,
                }
            )
        return listed

    def activate(self, form_id: str, version: int, by: str | None, at: datetime) -> None:
        """Make `version` the one the public page serves (also how a rollback is done)."""
        for _ in range(10):
            hosted = self.hosted(form_id)
            if version not in hosted.versions:
                raise FormVersionNotFound(f"form {form_id!r} has no version {version}")
            hosted.activate(version, by, at)
            try:
                self.log.save(hosted)
                return
            except IntegrityError:
                continue
        raise RuntimeError("could not activate: too many concurrent writers")

    def active(self, form_id: str) -> ActiveForm:
        """The form's active version, parsed (FormNotFound when there is none)."""
        if not FORM_ID.fullmatch(form_id):
            raise FormNotFound(f"no form {form_id!r}")
        recorder = self.log.recorder
        assert isinstance(recorder, LogRecorder)
        stream_version = recorder.stream_version(form_stream_id(form_id))
        if stream_version is None:
            raise FormNotFound(f"no form {form_id!r}")
        cached = self._active.get(form_id)
        if cached is not None and cached[0] == stream_version:
            return cached[1]
        hosted = self.hosted(form_id)
        if hosted.active_version is None:
            raise FormNotFound(f"form {form_id!r} has no active version")
        published = hosted.versions[hosted.active_version]
        active = ActiveForm(hosted.active_version, parse_form(published.document))
        self._active[form_id] = (hosted.version, active)
        return active


def _published(form_id: str, event: HostedForm.Published) -> PublishedForm:
    return PublishedForm(
        form_id=form_id,
        version=event.version,
        document=event.document,
        published_by=event.published_by,
        published_at=event.published_at,
    )
