"""leadflow's built-in message templates, in every language it speaks (docs/languages.md).

Its own notifications (`follow-up-overdue`, `reclaim-warning`, `lead-reclaimed`,
`lead-idle`) and the default nurture emails (`welcome`, `article-1` … `article-4`), each in
en and zh-CN. The Chinese texts are written as a Chinese sales team words such messages
(公海, 跟进, 收回), not translated word for word. Every language has the same ids (a test
holds them to it), so a reference resolves whatever language a message goes out in.
Placeholders are those of `domain.recipients.message_fields`; `captured_at` is the
capture time in the recipient team's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from domain.locales import Locale
from rules.model import Template

_ARTICLE_TOPICS: dict[Locale, tuple[str, ...]] = {
    "en": (
        "Getting started",
        "What similar companies did",
        "Measuring the results",
        "Planning the next step",
    ),
    "zh-CN": ("快速上手", "同行企业是怎么做的", "如何衡量效果", "规划下一步"),
}

BUILTIN_TEMPLATES: Mapping[str, Template] = MappingProxyType(
    {
        "follow-up-overdue": Template(
            subject="First follow-up overdue: {name} ({company})",
            body=(
                "Lead {name} from {company} (captured {captured_at}) was assigned to you "
                "24 hours ago and has no follow-up yet. Call or email them now; without a "
                "follow-up the lead returns to the public pool.\n\n{lead_url}"
            ),
        ),
        "reclaim-warning": Template(
            subject="Lead {name} returns to the pool soon",
            body=(
                "Lead {name} from {company} still has no follow-up. Record one now or it goes "
                "back to the public pool.\n\n{lead_url}"
            ),
        ),
        "lead-reclaimed": Template(
            subject="Lead reclaimed to the pool: {name} ({company})",
            body=(
                "Lead {name} from {company} had no follow-up within 48 hours of assignment "
                "and was returned to the public pool. "
                "Previous owner: {previous_owner_name}.\n\n{lead_url}"
            ),
        ),
        "lead-idle": Template(
            subject="Idle lead returned to the pool: {name} ({company})",
            body=(
                "Lead {name} from {company} had no follow-up for 7 days and was returned to "
                "the public pool. "
                "Previous owner: {previous_owner_name}, team: {team}.\n\n{lead_url}"
            ),
        ),
        "welcome": Template(
            subject="Welcome, {name}",
            body=(
                "Hi {name},\n\nthank you for your interest. Over the next weeks we will send "
                "you one short article a week on getting the most out of it.\n\n"
                "Unsubscribe: {unsubscribe_url}"
            ),
        ),
        **{
            f"article-{week}": Template(
                subject=f"{{name}}, week {week}: {topic}",
                body=(
                    f"Hi {{name}},\n\nthis week: {topic.lower()}.\n\n"
                    "Reply to this email to talk to us.\n\nUnsubscribe: {unsubscribe_url}"
                ),
            )
            for week, topic in enumerate(_ARTICLE_TOPICS["en"], start=1)
        },
    }
)

BUILTIN_TEMPLATES_ZH_CN: Mapping[str, Template] = MappingProxyType(
    {
        "follow-up-overdue": Template(
            subject="跟进超时提醒：{name}（{company}）",
            body=(
                "线索 {name}（{company}）分配给你已满 24 小时，至今还没有跟进记录。"
                "请尽快电话或邮件联系客户；分配后 48 小时仍未跟进，线索将被收回公海。\n\n"
                "线索进入时间：{captured_at}\n{lead_url}"
            ),
        ),
        "reclaim-warning": Template(
            subject="线索即将退回公海：{name}",
            body=(
                "线索 {name}（{company}）仍没有跟进记录。请立即跟进并登记，"
                "否则线索将被收回公海。\n\n{lead_url}"
            ),
        ),
        "lead-reclaimed": Template(
            subject="线索已收回公海：{name}（{company}）",
            body=(
                "线索 {name}（{company}）分配后 48 小时内无人跟进，已自动收回公海。"
                "原负责人：{previous_owner_name}。\n\n{lead_url}"
            ),
        ),
        "lead-idle": Template(
            subject="线索 7 天未跟进，已退回公海：{name}（{company}）",
            body=(
                "线索 {name}（{company}）已连续 7 天没有跟进，已自动退回公海。"
                "原负责人：{previous_owner_name}，所属团队：{team_name}。\n\n{lead_url}"
            ),
        ),
        "welcome": Template(
            subject="{name}，您好！感谢关注",
            body=(
                "{name}，您好：\n\n感谢您的关注。接下来几周，我们每周会给您发一篇简短的文章，"
                "帮您把产品和服务用得更好。\n\n退订：{unsubscribe_url}"
            ),
        ),
        **{
            f"article-{week}": Template(
                subject=f"{{name}}，第 {week} 周：{topic}",
                body=(
                    f"{{name}}，您好：\n\n本周话题：{topic}。\n\n"
                    "有任何问题，直接回复这封邮件即可联系我们。\n\n退订：{unsubscribe_url}"
                ),
            )
            for week, topic in enumerate(_ARTICLE_TOPICS["zh-CN"], start=1)
        },
    }
)

BUILTIN_TRANSLATIONS: Mapping[Locale, Mapping[str, Template]] = MappingProxyType(
    {"en": BUILTIN_TEMPLATES, "zh-CN": BUILTIN_TEMPLATES_ZH_CN}
)
