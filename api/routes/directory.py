"""The sales directory (SPEC §6): teams, reps, people and channels, replaced whole."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import AdminBody, AdminCaller, StoreDep, require
from api.openapi_bodies import DIRECTORY_BODY
from api.responses import KEYED, READS_BODY, DirectoryDocument, refused

router = APIRouter(prefix="/v1/directory", tags=["directory"])


@router.put(
    "",
    openapi_extra=DIRECTORY_BODY,
    response_model=DirectoryDocument,
    responses=refused(*KEYED, *READS_BODY),
)
async def replace_directory(
    body: AdminBody, caller: AdminCaller, store: StoreDep
) -> dict[str, Any]:
    directory = await run_in_threadpool(
        store.rulebook.replace_directory, body, caller.name, datetime.now(UTC)
    )
    result: dict[str, Any] = directory.model_dump(mode="json")
    return result


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    response_model=DirectoryDocument,
    responses=refused(*KEYED),
)
async def get_directory(store: StoreDep) -> dict[str, Any]:
    return await run_in_threadpool(store.rulebook.directory_document)
