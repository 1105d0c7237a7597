"""GET /v1/reports/*: the reports of SPEC §7, from the read models, as JSON or CSV.

Every report takes `from` and `to` (an RFC 3339 date, meaning 00:00 that day in `tz`, or
a date-time with an offset, from 0001-01-02 to 9999-12-31; `from` inclusive, `to`
exclusive), `tz` (an IANA time zone: the days, weeks and months the report counts in;
default the setting LEADFLOW_TIME_ZONE) and `format=json|csv`. JSON is `{"report", "from",
"to", "time_zone", "rows": [...], ...summary}`; CSV is the rows alone, with a header line of
their keys. `GET /v1/reports/definitions` says what every number means, in en and zh-CN.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from api.deps import SettingsDep, StoreDep, require
from api.errors import invalid_query
from api.report_responses import (
    CampaignRoiReport,
    ExperimentsReport,
    FollowUpEfficiencyReport,
    FunnelReport,
    KpisReport,
    LeaderboardReport,
    ReportDefinitions,
    SourcesReport,
    report_answers,
)
from api.responses import KEYED, answer, refused
from leadflow.bootstrap import Store
from projections.report_definitions import DEFINITIONS
from projections.reports import (
    Report,
    Window,
    campaign_roi_report,
    experiments_report,
    follow_up_efficiency_report,
    funnel_report,
    kpis_report,
    leaderboard_report,
    parse_bound,
    parse_zone,
    sources_report,
)

router = APIRouter(
    prefix="/v1/reports", tags=["reports"], dependencies=[Depends(require("reports"))]
)

Format = Literal["json", "csv"]
Metric = Literal["followed_up", "MQL", "SQL", "opportunity", "won", "email_opened", "email_clicked"]


def window_of(
    settings: SettingsDep,
    start: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="Inclusive: a date or date-time."),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", max_length=40, description="Exclusive: a date or date-time."),
    ] = None,
    tz: Annotated[
        str | None,
        Query(
            max_length=64,
            description="IANA time zone of the report's days (default: the server's).",
            examples=["Asia/Shanghai"],
        ),
    ] = None,
) -> Window:
    """The `from`/`to`/`tz` of a report request; 422 naming the parameter when one is bad."""
    zone = _zone(tz or settings.time_zone)
    window = Window(_bound("/from", start, zone), _bound("/to", end, zone), zone)
    if window.start is not None and window.end is not None and window.end <= window.start:
        raise invalid_query(("/to", "must be after from"))
    return window


WindowDep = Annotated[Window, Depends(window_of)]


def _bound(path: str, raw: str | None, zone: ZoneInfo) -> Any:
    if raw is None:
        return None
    try:
        return parse_bound(raw, zone)
    except ValueError as exc:
        raise invalid_query((path, str(exc))) from exc


def _zone(name: str) -> ZoneInfo:
    try:
        return parse_zone(name)
    except ValueError as exc:
        raise invalid_query(("/tz", str(exc))) from exc


async def _answer(
    store: Store, build: Callable[[Connection], Report], format_: Format
) -> dict[str, Any] | Response:
    def run() -> Report:
        with store.engine.connect() as conn:
            return build(conn)

    report = await run_in_threadpool(run)
    if format_ == "json":
        return report.as_dict()
    return Response(
        _csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report.name}.csv"'},
    )


def _csv(report: Report) -> str:
    """The rows as CSV: a header of the row keys, one line per row, empty for null."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=report.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    return out.getvalue()


FormatQuery = Annotated[Format, Query(alias="format")]


@router.get("/sources", response_model=None, responses=report_answers(SourcesReport))
async def sources(
    store: StoreDep, window: WindowDep, format_: FormatQuery = "json"
) -> dict[str, Any] | Response:
    """Leads captured in the window by source and channel: count and share."""
    return await _answer(store, lambda conn: sources_report(conn, window), format_)


@router.get("/funnel", response_model=None, responses=report_answers(FunnelReport))
async def funnel(
    store: StoreDep, window: WindowDep, format_: FormatQuery = "json"
) -> dict[str, Any] | Response:
    """Of the leads captured in the window, how many reached MQL, SQL, opportunity, won."""
    return await _answer(store, lambda conn: funnel_report(conn, window), format_)


@router.get("/campaign-roi", response_model=None, responses=report_answers(CampaignRoiReport))
async def campaign_roi(
    store: StoreDep,
    window: WindowDep,
    interval: Literal["week", "month"] = "month",
    format_: FormatQuery = "json",
) -> dict[str, Any] | Response:
    """Spend and first-touch revenue per campaign and week or month, and ROI."""
    return await _answer(store, lambda conn: campaign_roi_report(conn, window, interval), format_)


@router.get("/leaderboard", response_model=None, responses=report_answers(LeaderboardReport))
async def leaderboard(
    store: StoreDep, window: WindowDep, format_: FormatQuery = "json"
) -> dict[str, Any] | Response:
    """Deals won in the window per rep and per team, ranked by amount then count."""
    return await _answer(store, lambda conn: leaderboard_report(conn, window), format_)


@router.get(
    "/follow-up-efficiency", response_model=None, responses=report_answers(FollowUpEfficiencyReport)
)
async def follow_up_efficiency(
    store: StoreDep, window: WindowDep, format_: FormatQuery = "json"
) -> dict[str, Any] | Response:
    """Per rep and team: first-response time, follow-ups per lead, SLA share, reclaims."""
    return await _answer(store, lambda conn: follow_up_efficiency_report(conn, window), format_)


@router.get("/kpis", response_model=None, responses=report_answers(KpisReport))
async def kpis(
    store: StoreDep, window: WindowDep, format_: FormatQuery = "json"
) -> dict[str, Any] | Response:
    """CAC, LTV, LTV:CAC, MQL→SQL rate and marketing ROI."""
    return await _answer(store, lambda conn: kpis_report(conn, window), format_)


@router.get("/experiments", response_model=None, responses=report_answers(ExperimentsReport))
async def experiments(
    store: StoreDep,
    window: WindowDep,
    settings: SettingsDep,
    metric: Metric = "won",
    min_sample: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="Default: LEADFLOW_EXPERIMENT_MIN_SAMPLE."),
    ] = None,
    format_: FormatQuery = "json",
) -> dict[str, Any] | Response:
    """Per experiment variant: conversions by `metric` with a 95% Wilson interval, and
    lift, p-value and the difference's 95% CI (Newcombe's hybrid score) against the control
    (first by name); a comparison with fewer than `min_sample` leads on either side answers
    `enough_data: false` and no p-value or interval."""
    least = min_sample or settings.experiment_min_sample
    return await _answer(
        store, lambda conn: experiments_report(conn, window, metric, least), format_
    )


@router.get("/definitions", response_model=answer(ReportDefinitions), responses=refused(*KEYED))
async def definitions(settings: SettingsDep) -> dict[str, Any]:
    """What every report number counts, over which window and by which time, in en and
    zh-CN; and the server's defaults a reader needs to show them (time zone, currency)."""
    return {
        "languages": ["en", "zh-CN"],
        "time_zone": settings.time_zone,
        "currency": settings.currency,
        "reports": DEFINITIONS,
    }
