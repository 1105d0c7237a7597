"""What each report number means, in English and Simplified Chinese: what is counted, over
which window and by which time. Served at `GET /v1/reports/definitions` and shown by the
dashboard beside every figure; docs/analytics.md ("Definitions") says the same.

"The period" is the report's `from`/`to`; its days, weeks and months are those of the
report's time zone (`tz`). Keys are the reports' row keys (and summary keys such as
`captured`), so a reader looks a column up by the name it already has.
"""

# Chinese is written with full-width punctuation, and the texts use the minus sign.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "zh-CN")

_LEADS_IN_PERIOD = (
    "leads captured in the period (by when the lead first came in)",
    "本期内获取的线索（按线索首次进入的时间）",
)

Definition = dict[str, str]


def _d(en: str, zh: str) -> Definition:
    return {"en": en, "zh-CN": zh}


DEFINITIONS: Final[dict[str, dict[str, Definition]]] = {
    "sources": {
        "count": _d(
            f"Number of {_LEADS_IN_PERIOD[0]} from this source and channel.",
            f"来自该来源和渠道的{_LEADS_IN_PERIOD[1]}数量。",
        ),
        "share": _d(
            "This row's leads as a fraction of all leads captured in the period.",
            "该行线索占本期内获取的全部线索的比例。",
        ),
        "total": _d(
            f"All {_LEADS_IN_PERIOD[0]}.",
            f"{_LEADS_IN_PERIOD[1]}总数。",
        ),
    },
    "funnel": {
        "captured": _d(
            f"All {_LEADS_IN_PERIOD[0]}.",
            f"{_LEADS_IN_PERIOD[1]}总数。",
        ),
        "count": _d(
            f"Of the {_LEADS_IN_PERIOD[0]}, those that reached this stage or a later one "
            "by now (a lost lead counts up to the stage it reached).",
            f"{_LEADS_IN_PERIOD[1]}中，截至目前到达该阶段或更后阶段的数量"
            "（输单的线索计入其到达过的阶段）。",
        ),
        "step_rate": _d(
            "This stage's count divided by the stage before's (MQL: by the leads captured).",
            "该阶段数量除以上一阶段数量（MQL 除以获取的线索数）。",
        ),
    },
    "campaign-roi": {
        "spend": _d(
            "Campaign spend in the period: each spend record spread evenly over the days of "
            "its own period, counting the days that fall in this period.",
            "本期内的活动花费：每笔花费按其所属周期的天数平均分摊，计入落在本期内的天数。",
        ),
        "revenue": _d(
            "Amounts of deals won in the period (by the time they were won), credited to the "
            "campaign of the lead's first touch. Deals of leads without a campaign count "
            "nowhere here.",
            "本期内赢单的金额（按赢单时间），归属于线索首次接触的活动。无活动的线索不计入。",
        ),
        "roi": _d(
            "(revenue − spend) / spend; empty when nothing was spent.",
            "（收入 − 花费）/ 花费；无花费时为空。",
        ),
        "overall": _d(
            "All campaigns together over the whole period: the same number as the Marketing "
            "ROI figure.",
            "全部活动在整个期间内的合计：与“营销投资回报率”指标是同一个数。",
        ),
    },
    "leaderboard": {
        "won_count": _d(
            "Deals won in the period (by the time they were won) while the rep (team) owned "
            "the lead.",
            "本期内（按赢单时间）该销售（团队）负责期间赢单的数量。",
        ),
        "won_amount": _d(
            "The amounts of those deals, as recorded.",
            "这些赢单的金额（按记录）。",
        ),
        "rank": _d(
            "By won amount, then won count; equal ones share a rank.",
            "按赢单金额排名，其次按赢单数量；相同者名次并列。",
        ),
    },
    "follow-up-efficiency": {
        "leads": _d(
            f"Distinct {_LEADS_IN_PERIOD[0]} the rep (team) held.",
            f"该销售（团队）负责过的{_LEADS_IN_PERIOD[1]}（去重）。",
        ),
        "avg_first_response_seconds": _d(
            "Mean time from when leadflow received the lead (or the hand-over to this rep: "
            "a claim or reassignment) to the first follow-up, over the assignments that got "
            "one. A follow-up dated before that counts as 0, never negative.",
            "从 leadflow 收到线索（或线索转给该销售：认领或改派）到首次跟进的平均时间，"
            "只计已跟进的分配。早于该时刻的跟进计为 0，绝不为负。",
        ),
        "avg_followups_per_lead": _d(
            "Follow-ups logged during the rep's (team's) assignments, per lead.",
            "该销售（团队）负责期间记录的跟进次数，按线索平均。",
        ),
        "within_sla_share": _d(
            "Assignments followed up before their first-follow-up timer fired, as a "
            "fraction of all assignments.",
            "在首次跟进计时器到期前完成跟进的分配占全部分配的比例。",
        ),
        "reclaimed": _d(
            "Assignments a rule took back to the pool (e.g. no follow-up within 48 h).",
            "被规则收回公海的分配数（如 48 小时内未跟进）。",
        ),
    },
    "kpis": {
        "spend": _d(
            "All campaign spend in the period, by the days of each spend's own period.",
            "本期内全部活动花费，按每笔花费所属周期的天数分摊。",
        ),
        "new_customers": _d(
            "Deals won in the period (by the time they were won).",
            "本期内（按赢单时间）赢单的数量。",
        ),
        "revenue": _d(
            "Amounts of all deals won in the period, with or without a campaign.",
            "本期内全部赢单的金额，无论是否来自活动。",
        ),
        "campaign_revenue": _d(
            "Amounts of deals won in the period whose lead's first touch was a campaign.",
            "本期内赢单中，线索首次接触来自活动的金额。",
        ),
        "cac": _d(
            "Customer acquisition cost: spend / new customers.",
            "获客成本：花费 / 新客户数。",
        ),
        "ltv": _d(
            "Revenue per new customer: revenue / new customers.",
            "客户价值：收入 / 新客户数。",
        ),
        "ltv_to_cac": _d("LTV / CAC.", "客户价值 / 获客成本。"),
        "mql_to_sql_rate": _d(
            f"Of the {_LEADS_IN_PERIOD[0]} that reached MQL, the fraction that reached SQL.",
            f"{_LEADS_IN_PERIOD[1]}中到达 MQL 的，又到达 SQL 的比例。",
        ),
        "marketing_roi": _d(
            "(campaign revenue − spend) / spend over the period: the campaign ROI report's "
            "overall figure.",
            "本期（活动收入 − 花费）/ 花费：即活动投资回报报表的合计值。",
        ),
    },
    "experiments": {
        "n": _d(
            f"The {_LEADS_IN_PERIOD[0]} that were given this variant.",
            f"分到该版本的{_LEADS_IN_PERIOD[1]}。",
        ),
        "conversions": _d(
            "Of them, those that reached the chosen metric by now.",
            "其中截至目前达成所选指标的数量。",
        ),
        "rate": _d(
            "Conversions / n, with its 95% Wilson score interval.",
            "转化数 / 样本数，附 95% Wilson 置信区间。",
        ),
        "enough_data": _d(
            "Whether this variant and the control each have at least the minimum sample; "
            "without it there is no p-value or interval.",
            "该版本与对照组是否都达到最小样本量；未达到则不给出 p 值和区间。",
        ),
        "lift": _d(
            "(rate − control's rate) / control's rate; the control is the first variant by name.",
            "（转化率 − 对照组转化率）/ 对照组转化率；对照组为名称排序第一的版本。",
        ),
        "p_value": _d(
            "Two-sided p-value of the pooled two-proportion z-test against the control.",
            "与对照组比较的双侧合并两比例 z 检验 p 值。",
        ),
        "diff_ci": _d(
            "95% interval of (rate − control's rate), Newcombe's hybrid score method; "
            "always within −100% to 100%.",
            "（转化率 − 对照组转化率）的 95% 置信区间，Newcombe 混合得分法；"
            "始终在 −100% 到 100% 之间。",
        ),
    },
}
