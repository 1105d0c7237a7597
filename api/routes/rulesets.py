"""Rulesets (SPEC §5): validate, publish immutable versions, activate (and roll back)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import AdminBody, AdminCaller, ReadBody, StoreDep, require
from api.locales import RequestLocale
from api.openapi_bodies import DESCRIBE_BODY, RULESET_BODY
from api.responses import (
    KEYED,
    READS_BODY,
    NoActiveRuleset,
    PublishedRuleset,
    RulesetActivated,
    RulesetPublished,
    RulesetValidation,
    RulesetVersions,
    RuleVocabulary,
    answer,
    refused,
)
from api.rule_word_responses import RulesetDescription
from rules.describe import NO_RULESET, describe_against
from rules.describe_request import parse_describe_request
from rules.model import Ruleset
from rules.schema import ruleset_schema
from rules.validation import validate_ruleset

router = APIRouter(prefix="/v1/rulesets", tags=["rulesets"])
Reader = [Depends(require("read"))]
NO_VERSION = {404: "No such version (`ruleset_not_found`)."}


@router.get(
    "/schema", dependencies=Reader, response_model=answer(RuleVocabulary), responses=refused(*KEYED)
)
async def get_schema(locale: RequestLocale) -> dict[str, Any]:
    """Variables (types, operators), actions (param schemas) and triggers: what a
    rule-builder UI needs; `labels` in `locale` (else `Accept-Language`'s, else en)."""
    return ruleset_schema(locale)


@router.post(
    "/validate",
    dependencies=Reader,
    openapi_extra=RULESET_BODY,
    response_model=answer(RulesetValidation),
    responses=refused(*KEYED, *READS_BODY),
)
async def validate(body: ReadBody, store: StoreDep) -> dict[str, Any]:
    directory = await run_in_threadpool(store.rulebook.directory)
    errors = validate_ruleset(body, directory)
    return {"valid": not errors, "errors": [e.as_dict() for e in errors]}


@router.post(
    "/describe",
    dependencies=Reader,
    openapi_extra=DESCRIBE_BODY,
    response_model=answer(RulesetDescription),
    responses=refused(
        *KEYED,
        *READS_BODY,
        404,
        meanings={
            404: "`base_version` names no ruleset version (`ruleset_not_found`).",
            422: "The request is not valid (`invalid_ruleset`): every error by path, the "
            "candidate's under `/candidate`.",
        },
    ),
)
async def describe(body: ReadBody, store: StoreDep, asked: RequestLocale) -> dict[str, Any]:
    """The candidate ruleset in sentences, and what it changes against `base_version`
    (null: the active version) in words: each rule, timer, sequence, template,
    experiment and the pool policy added, removed or changed, with reps and teams by
    their directory names; in the body's `locale`, else `?locale=`, else
    `Accept-Language`'s, else en."""

    def read() -> dict[str, Any]:
        directory = store.rulebook.directory()
        question = parse_describe_request(body, directory)
        version = question.base_version
        if version is None:
            version = store.rulebook.active_version()
        # A published version is shown as stored, even if the directory has changed since.
        base = (
            NO_RULESET
            if version is None
            else Ruleset.model_validate(store.rulebook.get(version).document)
        )
        locale = question.locale or asked
        return describe_against(base, version, question.candidate, directory, locale)

    return await run_in_threadpool(read)


@router.post(
    "",
    status_code=201,
    openapi_extra=RULESET_BODY,
    response_model=answer(RulesetPublished),
    responses=refused(
        *KEYED,
        *READS_BODY,
        meanings={422: "The ruleset is not valid (`invalid_ruleset`): every error by path."},
    ),
)
async def publish(body: AdminBody, caller: AdminCaller, store: StoreDep) -> JSONResponse:
    version = await run_in_threadpool(store.rulebook.publish, body, caller.name, datetime.now(UTC))
    return JSONResponse({"version": version}, status_code=201)


@router.get(
    "", dependencies=Reader, response_model=answer(RulesetVersions), responses=refused(*KEYED)
)
async def list_versions(store: StoreDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        active = store.rulebook.active_version()
        trials = store.rulebook.trials()
        return {
            "active_version": active,
            "rulesets": [v.summary(active, trials) for v in store.rulebook.versions()],
        }

    return await run_in_threadpool(read)


@router.get(
    "/active",
    dependencies=Reader,
    response_model=answer(PublishedRuleset, NoActiveRuleset),
    responses=refused(*KEYED),
)
async def get_active(store: StoreDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        active = store.rulebook.active_version()
        if active is None:
            return {"version": None, "ruleset": None}
        return _version_body(store, active, active)

    return await run_in_threadpool(read)


@router.get(
    "/{version}",
    dependencies=Reader,
    response_model=answer(PublishedRuleset),
    responses=refused(*KEYED, 404, meanings=NO_VERSION),
)
async def get_version(version: int, store: StoreDep) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: _version_body(store, version, store.rulebook.active_version())
    )


@router.post(
    "/{version}/activate",
    response_model=answer(RulesetActivated),
    responses=refused(
        *KEYED,
        404,
        409,
        meanings={
            **NO_VERSION,
            409: "The version is not valid against the current directory (`ruleset_invalid`).",
        },
    ),
)
async def activate(version: int, store: StoreDep, caller: AdminCaller) -> dict[str, Any]:
    await run_in_threadpool(store.rulebook.activate, version, caller.name, datetime.now(UTC))
    return {"active_version": version}


def _version_body(store: Any, version: int, active: int | None) -> dict[str, Any]:
    published = store.rulebook.get(version)
    summary = published.summary(active, store.rulebook.trials())
    return {**summary, "ruleset": published.document}
