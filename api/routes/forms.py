"""Hosted forms' documents (docs/forms.md): validate, publish immutable versions, list,
read, activate (and roll back). Admin keys write; read keys read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import AdminBody, AdminCaller, ReadBody, StoreDep, require
from api.form_responses import (
    FORM_BODY,
    FormActivated,
    FormList,
    FormPublished,
    FormValidation,
    FormVersions,
    PublishedForm,
)
from api.responses import KEYED, READS_BODY, answer, refused
from intake.form_document import validate_form

router = APIRouter(prefix="/v1/forms", tags=["forms"])
Reader = [Depends(require("read"))]
FormId = Path(max_length=63, description="The form's id, e.g. contact-us.")
Version = Path(ge=1, le=2**31, description="A published version of the form.")
NO_FORM = {404: "No such form (`form_not_found`) or version (`form_version_not_found`)."}


@router.post(
    "/validate",
    dependencies=Reader,
    openapi_extra=FORM_BODY,
    response_model=answer(FormValidation),
    responses=refused(*KEYED, *READS_BODY),
)
async def validate(body: ReadBody) -> dict[str, Any]:
    errors = validate_form(body)
    return {"valid": not errors, "errors": [e.as_dict() for e in errors]}


@router.post(
    "",
    status_code=201,
    openapi_extra=FORM_BODY,
    response_model=answer(FormPublished),
    responses=refused(
        *KEYED,
        *READS_BODY,
        meanings={422: "The form is not valid (`invalid_form`): every error by path."},
    ),
)
async def publish(body: AdminBody, caller: AdminCaller, store: StoreDep) -> JSONResponse:
    form_id, version = await run_in_threadpool(
        store.forms.publish, body, caller.name, datetime.now(UTC)
    )
    return JSONResponse({"form_id": form_id, "version": version}, status_code=201)


@router.get("", dependencies=Reader, response_model=answer(FormList), responses=refused(*KEYED))
async def list_forms(store: StoreDep) -> dict[str, Any]:
    return {"forms": await run_in_threadpool(store.forms.forms)}


@router.get(
    "/{form_id}",
    dependencies=Reader,
    response_model=answer(PublishedForm),
    responses=refused(*KEYED, 404, meanings=NO_FORM),
)
async def get_active(store: StoreDep, form_id: str = FormId) -> dict[str, Any]:
    """The form's active version (its latest, if none is active)."""

    def read() -> dict[str, Any]:
        active, versions = store.forms.versions(form_id)
        shown = next((v for v in versions if v.version == active), versions[-1])
        return {**shown.summary(active), "form": shown.document}

    return await run_in_threadpool(read)


@router.get(
    "/{form_id}/versions",
    dependencies=Reader,
    response_model=answer(FormVersions),
    responses=refused(*KEYED, 404, meanings=NO_FORM),
)
async def list_versions(store: StoreDep, form_id: str = FormId) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        active, versions = store.forms.versions(form_id)
        return {
            "form_id": form_id,
            "active_version": active,
            "versions": [v.summary(active) for v in versions],
        }

    return await run_in_threadpool(read)


@router.get(
    "/{form_id}/versions/{version}",
    dependencies=Reader,
    response_model=answer(PublishedForm),
    responses=refused(*KEYED, 404, meanings=NO_FORM),
)
async def get_version(
    store: StoreDep, form_id: str = FormId, version: int = Version
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        published = store.forms.version(form_id, version)
        active, _ = store.forms.versions(form_id)
        return {**published.summary(active), "form": published.document}

    return await run_in_threadpool(read)


@router.post(
    "/{form_id}/versions/{version}/activate",
    response_model=answer(FormActivated),
    responses=refused(*KEYED, 404, meanings=NO_FORM),
)
async def activate(
    store: StoreDep, caller: AdminCaller, form_id: str = FormId, version: int = Version
) -> dict[str, Any]:
    await run_in_threadpool(store.forms.activate, form_id, version, caller.name, datetime.now(UTC))
    return {"form_id": form_id, "active_version": version}
