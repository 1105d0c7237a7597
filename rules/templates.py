"""Built-in message templates and their rendering.

leadflow's own notifications (overdue follow-up, reclaim, idle) and the default nurture
emails ship here; a ruleset's `templates` add to or override them by id. Placeholders are
`{field}`; the fields senders fill are `name`, `company`, `lead_id`, `owner`, `team`,
`source`, `region`, `lead_url` and, in nurture emails, `unsubscribe_url`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rules.model import Ruleset, Template

BUILTIN_TEMPLATES: Mapping[str, Template] = MappingProxyType(
    {
        "follow-up-overdue": Template(
            subject="First follow-up overdue: {name} ({company})",
            body=(
                "Lead {name} from {company} was assigned to you 24 hours ago and has no "
                "follow-up yet. Call or email them now; without a follow-up the lead returns "
                "to the public pool.\n\n{lead_url}"
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
                "and was returned to the public pool. Previous owner: {owner}.\n\n{lead_url}"
            ),
        ),
        "lead-idle": Template(
            subject="Idle lead returned to the pool: {name} ({company})",
            body=(
                "Lead {name} from {company} had no follow-up for 7 days and was returned to "
                "the public pool. Previous owner: {owner}, team: {team}.\n\n{lead_url}"
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
            for week, topic in (
                (1, "Getting started"),
                (2, "What similar companies did"),
                (3, "Measuring the results"),
                (4, "Planning the next step"),
            )
        },
    }
)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass(frozen=True)
class Message:
    """A rendered template."""

    subject: str
    body: str


def find_template(ruleset: Ruleset, template_id: str) -> Template | None:
    """The ruleset's template with this id, else the built-in one, else None."""
    return ruleset.templates.get(template_id) or BUILTIN_TEMPLATES.get(template_id)


def render_text(text: str, fields: Mapping[str, object]) -> str:
    """Fill `{field}` placeholders; a field that is None renders empty, and a placeholder
    naming no field stays visible as written, so a typo shows instead of crashing."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fields:
            return match.group(0)
        value = fields[key]
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(fill, text)


def render(template: Template, fields: Mapping[str, object], variant: str | None = None) -> Message:
    """Render subject and body; a lead in `variant` gets that variant's subject if the
    template has one."""
    subject = template.subject
    if variant is not None:
        subject = template.subject_variants.get(variant, subject)
    return Message(
        subject=render_text(subject, fields),
        body=render_text(template.body, fields),
    )
