"""What the report routes answer (`/v1/reports/*`), as pydantic models for the OpenAPI
description: each report's rows, as JSON or as CSV (see `api.responses`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.responses import KEYED, Answer, Day, Fraction, Timestamp, component, refused


class ReportBody(Answer):
    report: str
    from_: Timestamp | None = Field(alias="from", description="Inclusive.")
    to: Timestamp | None = Field(description="Exclusive.")
    time_zone: str = Field(
        description="The IANA zone of the report's days, weeks and months.",
        examples=["Asia/Shanghai"],
    )


class SourceRow(Answer):
    source: str | None
    channel: str | None
    count: int
    share: Fraction


class SourceTotal(Answer):
    source: str | None
    count: int
    share: Fraction


class SourcesReport(ReportBody):
    rows: list[SourceRow]
    by_source: list[SourceTotal]
    total: int


class FunnelRow(Answer):
    stage: Literal["MQL", "SQL", "opportunity", "won"]
    count: int
    step_rate: Fraction = Field(description="From the stage before (MQL: from captured).")


class FunnelReport(ReportBody):
    rows: list[FunnelRow]
    captured: int


class CampaignPeriod(Answer):
    campaign_id: str
    period_start: Day
    spend: float
    revenue: float
    roi: Fraction


class CampaignTotal(Answer):
    campaign_id: str
    spend: float
    revenue: float
    roi: Fraction


class CampaignsOverall(Answer):
    spend: float
    revenue: float
    roi: Fraction = Field(description="The same number as the KPIs' `marketing_roi`.")


class CampaignRoiReport(ReportBody):
    rows: list[CampaignPeriod]
    interval: Literal["week", "month"]
    totals: list[CampaignTotal]
    overall: CampaignsOverall


class LeaderboardRow(Answer):
    level: Literal["rep", "team"]
    id: str
    team: str | None
    won_count: int
    won_amount: float
    rank: int


class LeaderboardReport(ReportBody):
    rows: list[LeaderboardRow]


class FollowUpEfficiencyRow(Answer):
    level: Literal["rep", "team"]
    id: str | None
    team: str | None
    leads: int
    avg_first_response_seconds: float | None
    avg_followups_per_lead: float | None
    within_sla_share: Fraction
    reclaimed: int


class FollowUpEfficiencyReport(ReportBody):
    rows: list[FollowUpEfficiencyRow]


class KpisRow(Answer):
    spend: float
    new_customers: int
    revenue: float = Field(description="Every deal won, with or without a campaign.")
    campaign_revenue: float = Field(description="Deals whose lead's first touch was a campaign.")
    cac: float | None
    ltv: float | None
    ltv_to_cac: float | None
    mql_to_sql_rate: Fraction
    marketing_roi: Fraction


class KpisReport(ReportBody):
    rows: list[KpisRow]


class ExperimentRow(Answer):
    experiment: str
    variant: str
    n: int
    conversions: int
    rate: Fraction
    rate_ci_low: float | None
    rate_ci_high: float | None
    enough_data: bool = Field(
        description="Variant and control each have at least `min_sample` leads; if not, "
        "`p_value` and the difference's interval are null."
    )
    lift: float | None = Field(description="Against the control (the first variant by name).")
    p_value: float | None
    diff_ci_low: float | None
    diff_ci_high: float | None


class ExperimentsReport(ReportBody):
    rows: list[ExperimentRow]
    metric: str
    min_sample: int


class Definition(Answer):
    en: str
    zh_CN: str = Field(alias="zh-CN")


class ReportDefinitions(Answer):
    languages: list[str] = Field(examples=[["en", "zh-CN"]])
    time_zone: str = Field(description="The server's default report time zone.")
    currency: str = Field(description="ISO 4217 code of report amounts.", examples=["CNY"])
    reports: dict[str, dict[str, Definition]] = Field(
        description="Per report (`kpis`, `campaign-roi`, ...), per row or summary key."
    )


def report_answers(model: type[ReportBody]) -> dict[int | str, Any]:
    """`responses=` for a report: `model` as JSON, or its rows as CSV (`format=csv`), or an
    error."""
    csv = {"schema": {"type": "string"}, "example": "stage,count,step_rate\nMQL,3,0.5\n"}
    json = {"schema": component(model.__name__)}
    return {200: {"content": {"application/json": json, "text/csv": csv}}, **refused(*KEYED)}


REPORT_MODELS: list[type[BaseModel]] = [
    SourcesReport,
    FunnelReport,
    CampaignRoiReport,
    LeaderboardReport,
    FollowUpEfficiencyReport,
    KpisReport,
    ExperimentsReport,
    ReportDefinitions,
]
