"""What-if replays over HTTP (SPEC §8): `POST /v1/replays` queues one (admin),
`GET /v1/replays/{id}` follows it to its report (read), `POST /v1/replays/{id}/cancel`
stops it (admin).

The replay runs on a worker thread of the API process that accepted it, one at a time
(see `replay.jobs`); its state is in the database, so any replica answers the GET and
takes the cancel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import AdminBody, AdminCaller, StoreDep, require
from api.errors import error_body
from api.locales import RequestLocale
from api.openapi_bodies import REPLAY_BODY
from api.responses import KEYED, READS_BODY, Replay, ReplayCancelled, ReplayQueued, answer, refused
from replay.jobs import ReplayRunner, TooManyReplays
from replay.whatif import check_baseline, parse_what_if, request_json

router = APIRouter(prefix="/v1/replays", tags=["replays"])


async def get_replays(request: Request) -> ReplayRunner:
    runner: ReplayRunner = request.app.state.replays
    return runner


ReplaysDep = Annotated[ReplayRunner, Depends(get_replays)]
NO_REPLAY = {404: "No such replay (`replay_not_found`)."}


@router.post(
    "",
    status_code=202,
    openapi_extra=REPLAY_BODY,
    response_model=answer(ReplayQueued),
    responses=refused(
        *KEYED,
        *READS_BODY,
        404,
        meanings={
            404: "`baseline` names no ruleset version (`ruleset_not_found`).",
            422: "The question is not valid: every bad field, the candidate's under `/ruleset`.",
            429: "Too many failed authentications from this address, or this API process "
            "already holds its most unfinished replays (`too_many_replays`): wait "
            "`Retry-After` seconds.",
        },
    ),
)
async def start_replay(
    body: AdminBody, store: StoreDep, replays: ReplaysDep, asked: RequestLocale
) -> JSONResponse:
    """Queue a replay of the log's history under the candidate `ruleset`; 422 naming every
    bad field (the candidate's under `/ruleset`, over 256 KiB included), 404 for an
    unknown `baseline` version, 429 with Retry-After when this API process already holds
    `MAX_QUEUED` unfinished replays. Records nothing unless it answers 202. The summary is
    in the body's `locale`, else `?locale=`, else `Accept-Language`'s, else en."""

    def accept() -> str:
        question = parse_what_if(body, store.rulebook.directory(), asked)
        check_baseline(question, store.rulebook)
        return replays.submit(question, request_json(question, body["ruleset"]))

    try:
        replay_id = await run_in_threadpool(accept)
    except TooManyReplays as full:
        # The one error with a header to send: mapped here, where the header is known.
        return JSONResponse(
            error_body(full.code, full.message),
            status_code=429,
            headers={"Retry-After": str(full.retry_after_seconds)},
        )
    return JSONResponse(
        {"replay_id": replay_id, "status": "queued"},
        status_code=202,
        headers={"Location": f"/v1/replays/{replay_id}"},
    )


@router.post(
    "/{replay_id}/cancel",
    status_code=202,
    response_model=answer(ReplayCancelled),
    responses=refused(
        *KEYED,
        404,
        409,
        meanings={**NO_REPLAY, 409: "The replay has already ended (`replay_finished`)."},
    ),
)
async def cancel_replay(replay_id: str, replays: ReplaysDep, _: AdminCaller) -> dict[str, str]:
    """Cancel the replay: a queued one is `cancelled` at once, a running one `cancelling`
    until its runner (in whichever API process) stops it at its next progress report;
    409 `replay_finished` once it has ended, 404 for an unknown id."""
    status = await run_in_threadpool(replays.runs.cancel, replay_id, datetime.now(UTC))
    return {"replay_id": replay_id, "status": status}


@router.get(
    "/{replay_id}",
    dependencies=[Depends(require("read"))],
    response_model=answer(Replay),
    responses=refused(*KEYED, 404, meanings=NO_REPLAY),
)
async def get_replay(replay_id: str, replays: ReplaysDep) -> dict[str, Any]:
    """The replay's status and progress; its report (`result`, what `leadflow replay
    --format json` prints) once it succeeded, its `error` if it failed."""
    run = await run_in_threadpool(replays.runs.get, replay_id, datetime.now(UTC))
    return run.as_json()
