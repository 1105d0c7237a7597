"""Ruleset trials (docs/trials.md): run a published version in shadow or as a canary, read
what it changes, promote or stop it. Registered before the rulesets' `/{version}` routes,
so that `/v1/rulesets/trials` is this list, not a version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import MetaData, select

from api.deps import RulesBody, RulesCaller, StoreDep, require
from api.responses import KEYED, READS_BODY, RulesetActivated, answer, refused
from api.routes.reports import WindowDep
from api.trial_responses import RunningTrials, Trial, TrialReport
from domain.trials import CANARY, in_canary, parse_canary_share
from leadflow.bootstrap import Store
from projections.leads import leads_table
from store import shadow_decisions

router = APIRouter(prefix="/v1/rulesets", tags=["rulesets"])
Reader = [Depends(require("read"))]
NOT_FOR_TRIAL = {
    404: "No such version (`ruleset_not_found`).",
    409: "The version is the active one (`ruleset_is_active`), not valid against the current "
    "directory (`ruleset_invalid`), or on trial in the other mode (`ruleset_on_trial`).",
}
NOT_ON_TRIAL = {
    404: "No such version (`ruleset_not_found`).",
    409: "The version is not on trial (`ruleset_not_on_trial`), or no longer valid against "
    "the directory (`ruleset_invalid`, promote).",
}


@router.get(
    "/trials", dependencies=Reader, response_model=answer(RunningTrials), responses=refused(*KEYED)
)
async def list_trials(store: StoreDep) -> dict[str, Any]:
    """The versions on trial now: at most one shadow and one canary."""

    def read() -> dict[str, Any]:
        trials = store.rulebook.trials()
        return {
            "active_version": store.rulebook.active_version(),
            "trials": [t.as_dict() for t in trials.running()],
        }

    return await run_in_threadpool(read)


@router.post(
    "/{version}/shadow",
    response_model=answer(Trial),
    responses=refused(*KEYED, 404, 409, meanings=NOT_FOR_TRIAL),
)
async def start_shadow(version: int, store: StoreDep, caller: RulesCaller) -> dict[str, Any]:
    """Decide every trigger under this version too, changing nothing (a running shadow is
    replaced)."""
    trial = await run_in_threadpool(
        store.rulebook.start_shadow, version, caller.name, datetime.now(UTC)
    )
    return trial.as_dict()


@router.post(
    "/{version}/canary",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["share"],
                        "additionalProperties": False,
                        "properties": {
                            "share": {
                                "type": "number",
                                "exclusiveMinimum": 0,
                                "exclusiveMaximum": 1,
                                "examples": [0.1],
                            }
                        },
                    }
                }
            },
        }
    },
    response_model=answer(Trial),
    responses=refused(*KEYED, *READS_BODY, 404, 409, meanings=NOT_FOR_TRIAL),
)
async def start_canary(
    version: int, body: RulesBody, store: StoreDep, caller: RulesCaller
) -> dict[str, Any]:
    """Decide `share` of the leads captured from now on under this version (by lead id; a
    running canary is replaced)."""
    share = parse_canary_share(body)
    trial = await run_in_threadpool(
        store.rulebook.start_canary, version, share, caller.name, datetime.now(UTC)
    )
    return trial.as_dict()


@router.post(
    "/{version}/promote",
    response_model=answer(RulesetActivated),
    responses=refused(*KEYED, 404, 409, meanings=NOT_ON_TRIAL),
)
async def promote(version: int, store: StoreDep, caller: RulesCaller) -> dict[str, Any]:
    """Activate the version on trial and end its trial, in one commit."""
    await run_in_threadpool(store.rulebook.promote, version, caller.name, datetime.now(UTC))
    return {"active_version": version}


@router.post(
    "/{version}/stop",
    response_model=answer(RunningTrials),
    responses=refused(*KEYED, 404, 409, meanings=NOT_ON_TRIAL),
)
async def stop(version: int, store: StoreDep, caller: RulesCaller) -> dict[str, Any]:
    """End the version's trial: canary leads go back to the active version at their next
    trigger. Answers the trials still running."""

    def run() -> dict[str, Any]:
        store.rulebook.stop_trial(version, caller.name, datetime.now(UTC))
        return {
            "active_version": store.rulebook.active_version(),
            "trials": [t.as_dict() for t in store.rulebook.trials().running()],
        }

    return await run_in_threadpool(run)


@router.get(
    "/{version}/trial-report",
    dependencies=Reader,
    response_model=answer(TrialReport),
    responses=refused(*KEYED, 404, meanings={404: "No such version (`ruleset_not_found`)."}),
)
async def trial_report(version: int, window: WindowDep, store: StoreDep) -> dict[str, Any]:
    """What the version decides differently, from its shadow decisions decided in
    [`from`, `to`): while it is on trial, that trial's (`from` defaults to its start); once
    it stopped, every trial's of it."""
    return await run_in_threadpool(_report, store, version, window.start, window.end)


def _report(
    store: Store, version: int, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    store.rulebook.get(version)  # RulesetNotFound
    trials = store.rulebook.trials()
    mode = trials.mode_of(version)
    trial = next((t for t in trials.running() if t.version == version), None)
    with store.engine.connect() as conn:
        if trial is not None:
            # On trial: this trial's rows (since it started, unless asked otherwise), not
            # an earlier trial's of the same version in the other mode.
            since = since or trial.started_at
            rows = shadow_decisions.rows_for(conn, version, since, until, trial.mode)
        else:
            rows = shadow_decisions.rows_for(conn, version, since, until)
        report = shadow_decisions.trial_report(rows, version)
        canary_leads = None
        if trial is not None and trial.mode == CANARY:
            leads = leads_table(MetaData())
            created = conn.execute(
                select(leads.c.lead_id, leads.c.created_at).where(
                    leads.c.created_at >= trial.started_at.astimezone(UTC)
                )
            ).all()
            inside = sum(
                1
                for lead_id, created_at in created
                if in_canary(str(lead_id), _rfc3339(created_at), trial)
            )
            canary_leads = {
                "captured_since_start": len(created),
                "in_canary": inside,
                "not_in_canary": len(created) - inside,
            }
    return {
        **report,
        "mode": mode,
        "trial": trial.as_dict() if trial else None,
        "canary_leads": canary_leads,
    }


def _rfc3339(value: datetime) -> str:
    # SQLite gives the stored UTC time back without its offset.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
