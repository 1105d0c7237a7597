"""The sales directory (SPEC §6): teams, reps, people, channels and calendars, replaced
whole; and the public holidays a calendar is filled from."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import AdminBody, AdminCaller, StoreDep, require
from api.errors import invalid_query
from api.openapi_bodies import DIRECTORY_BODY
from api.responses import (
    KEYED,
    READS_BODY,
    DirectoryDocument,
    PublicHolidays,
    answer,
    refused,
)
from domain.public_holidays import FIRST_YEAR, LAST_YEAR, NoPublicHolidays, public_holidays

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


@router.get(
    "/holidays",
    dependencies=[Depends(require("read"))],
    response_model=answer(PublicHolidays),
    responses=refused(*KEYED),
)
async def get_public_holidays(
    country: Annotated[
        str,
        Query(
            min_length=2,
            max_length=3,
            pattern="^[A-Za-z]{2,3}$",
            description="ISO 3166-1 country code, e.g. CN.",
        ),
    ],
    year: Annotated[int, Query(ge=FIRST_YEAR, le=LAST_YEAR, description="e.g. 2027.")],
) -> dict[str, Any]:
    """The country's days off and make-up working days in `year`, from the `holidays`
    package, to paste into a calendar's `holidays` and `workdays` (the directory stores the
    dates themselves, so decisions never depend on the package's version)."""
    try:
        found = await run_in_threadpool(public_holidays, country, year)
    except NoPublicHolidays as error:
        raise invalid_query((f"/{error.parameter}", error.message)) from error
    return asdict(found)
