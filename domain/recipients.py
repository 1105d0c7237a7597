"""Who a `notify` action reaches, and the fields its template may use (SPEC §5, §6).

`resolve_targets` turns `notify {to, channel?}` into concrete delivery targets (an email
address or a webhook URL) by reading the lead and the directory; `message_fields` is what
`rules.templates.render` fills placeholders from. Pure and free of I/O: the sending is
done by `activities.senders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from domain.directory import Channel, Directory, Person, Rep, Team
from domain.errors import DomainError
from domain.locales import Locale, UnknownLocale, local_time, money, parse_locale
from domain.state import LeadState
from rules.vocabulary import vocabulary

TargetChannel = Literal["email", "dingtalk", "wecom", "slack", "webhook"]
EMAIL: TargetChannel = "email"


@dataclass(frozen=True)
class Target:
    """One delivery: an email address, or the URL of a webhook of `channel`'s kind.

    `recipient` is the directory id the notification is for: the rep or person when `to`
    names someone (also when they are reached on a channel), the channel's id for `team`.
    `mention` is the recipient's DingTalk or WeCom user id when a person is reached on a
    robot channel of that kind, so the group message @-mentions them.
    """

    channel: TargetChannel
    address: str
    recipient: str
    mention: str | None = None


class NoRecipient(DomainError):
    """The `notify` action names nobody who can be reached; the caller records the
    notification as skipped with this reason (`message`)."""

    code = "no_recipient"


def _lead_team(lead: LeadState, directory: Directory) -> Team:
    team_id = lead.team
    if team_id is None and lead.owner is not None:
        # A lead claimed from the pool has an owner but may never have been given a team.
        owner = directory.rep(lead.owner)
        team_id = owner.team if owner is not None else None
    if team_id is None:
        raise NoRecipient("the lead has no team")
    team = directory.team(team_id)
    if team is None:
        raise NoRecipient(f"team {team_id!r} is not in the directory")
    return team


def _person(to: str, lead: LeadState, directory: Directory) -> Person | Rep:
    if to == "owner":
        if lead.owner is None:
            raise NoRecipient("the lead has no owner")
        owner = directory.rep(lead.owner)
        if owner is None:
            raise NoRecipient(f"owner {lead.owner!r} is not in the directory")
        return owner
    if to in ("manager", "director"):
        team = _lead_team(lead, directory)
        person_id = team.manager if to == "manager" else team.director
        person = directory.person_or_rep(person_id)
        if person is None:
            raise NoRecipient(f"{to} {person_id!r} of team {team.id!r} is not in the directory")
        return person
    if to.startswith("rep:"):
        rep_id = to.removeprefix("rep:")
        rep = directory.rep(rep_id)
        if rep is None:
            raise NoRecipient(f"rep {rep_id!r} is not in the directory")
        return rep
    raise NoRecipient(f"unknown recipient {to!r}")


def _by_email(person: Person | Rep) -> Target:
    if person.email is None:
        raise NoRecipient(f"{person.id!r} has no email address")
    return Target(EMAIL, person.email, person.id)


def _on_channel(channel: Channel, recipient: str, mention: str | None = None) -> Target:
    return Target(channel.kind, channel.url, recipient, mention)


def _mention(person: Person | Rep, channel: Channel) -> str | None:
    if channel.kind == "dingtalk":
        return person.dingtalk_user_id
    if channel.kind == "wecom":
        return person.wecom_user_id
    return None


def resolve_targets(
    to: str, channel: str | None, lead: LeadState, directory: Directory
) -> list[Target]:
    """The targets `notify {to, channel}` delivers to for this lead, in directory order.

    - `owner`, `manager`, `director` (of the lead's team; a rep or a person) and
      `rep:<id>` reach that one person: by email unless `channel` names a directory
      channel, then on that channel (mentioning them where the directory knows their
      DingTalk/WeCom user id).
    - `team` reaches the team's channel, or the named channel; with `channel: "email"`
      it reaches every active rep of the team by email.
    - Inactive reps are still notified when named: `active` governs taking leads only.

    Raises NoRecipient, with a reason fit for the notification record, when nobody can be
    reached: no owner, no team, an id the directory does not know, a person without an
    email address, a team without a channel, an unknown channel id.
    """
    forced: Channel | None = None
    if channel is not None and channel != EMAIL:
        forced = directory.channel(channel)
        if forced is None:
            raise NoRecipient(f"channel {channel!r} is not in the directory")

    if to == "team":
        team = _lead_team(lead, directory)
        if channel == EMAIL:
            reps = [r for r in directory.reps_of(team.id) if r.active]
            if not reps:
                raise NoRecipient(f"team {team.id!r} has no active reps to email")
            return [Target(EMAIL, r.email, r.id) for r in reps]
        if forced is not None:
            return [_on_channel(forced, forced.id)]
        if team.channel is None:
            raise NoRecipient(f"team {team.id!r} has no channel")
        team_channel = directory.channel(team.channel)
        if team_channel is None:
            raise NoRecipient(
                f"channel {team.channel!r} of team {team.id!r} is not in the directory"
            )
        return [_on_channel(team_channel, team_channel.id)]

    person = _person(to, lead, directory)
    if forced is not None:
        return [_on_channel(forced, person.id, _mention(person, forced))]
    return [_by_email(person)]


def recipient_locale(target: Target, directory: Directory, fallback: Locale) -> Locale:
    """The language a message to `target` is written in: the `locale` the directory gives
    the rep or person it is for, else `fallback` (LEADFLOW_LOCALE; a team's channel too)."""
    person = directory.person_or_rep(target.recipient)
    return person.locale if person is not None and person.locale else fallback


def lead_locale(lead: LeadState, fallback: Locale) -> Locale:
    """The language of a nurture email to the lead: its `locale` attribute when that is a
    language leadflow speaks (`zh-CN`, `en`), else `fallback`."""
    try:
        return parse_locale(str(lead.attributes["locale"]))
    except (KeyError, UnknownLocale):
        return fallback


def message_fields(
    lead: LeadState,
    extra: Mapping[str, object] | None = None,
    *,
    directory: Directory | None = None,
    locale: Locale = "en",
    time_zone: str = "Asia/Shanghai",
) -> dict[str, object]:
    """The placeholders a template may use for this lead, for `rules.templates.render`.

    Lead fields by their rule-variable names (`name`, `email`, `phone`, `company`,
    `source`, `channel`, `region`, `industry`, `company_size`, `intent`, `score`, `stage`,
    `owner`, `team` as ids, `tags` comma-separated, `pool_reason`, `lead_id`), plus
    `attributes.<key>` and `variant.<experiment>`. With a directory, `owner_name` and
    `team_name` too. `previous_owner` is who owned it before it went back to the pool (its
    owner while it is not in the pool), `previous_owner_name` their directory name (else the
    id). `captured_at` is the capture time as `locale` writes it, in the time
    zone of the lead's team's calendar when the directory gives one, else `time_zone`;
    `won_amount` is the won deal with its currency and grouping ("¥1,200,000");
    `stage_words` and `pool_reason_words` the stage and pool reason in `locale`'s words
    (`GET /v1/words/events`: "商机", "48 小时未跟进").
    `lead_url` and `unsubscribe_url` are None (rendered empty) unless
    `extra` gives them; `extra` overrides any field. `name` falls back to the email, then
    the phone, so a message about a lead captured without a name still says who it is.
    """
    fields: dict[str, object] = {
        "lead_id": lead.lead_id,
        "name": lead.name or lead.email or lead.phone,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "source": lead.source,
        "channel": lead.channel,
        "region": lead.region,
        "industry": lead.industry,
        "company_size": lead.company_size,
        "campaign_id": lead.campaign_id,
        "form_id": lead.form_id,
        "intent": lead.intent,
        "score": lead.score,
        "stage": lead.stage,
        "owner": lead.owner,
        "team": lead.team,
        "tags": ", ".join(lead.tags),
        "pool_reason": lead.pool_reason,
        "stage_words": vocabulary(locale).stages.get(lead.stage, lead.stage),
        "pool_reason_words": (
            None
            if lead.pool_reason is None
            else vocabulary(locale).pool_reasons.get(lead.pool_reason, lead.pool_reason)
        ),
        "won_amount": None
        if lead.won_amount is None
        else money(lead.won_amount, lead.won_currency),
        "owner_name": None,
        "previous_owner": _previous_owner(lead),
        "previous_owner_name": _previous_owner(lead),
        "team_name": None,
        "lead_url": None,
        "unsubscribe_url": None,
    }
    if directory is not None:
        owner = directory.rep(lead.owner) if lead.owner is not None else None
        team = directory.team(lead.team) if lead.team is not None else None
        fields["owner_name"] = owner.name if owner is not None else None
        fields["team_name"] = team.name if team is not None else None
        previous = _previous_owner(lead)
        previous_rep = directory.rep(previous) if previous is not None else None
        if previous_rep is not None:
            fields["previous_owner_name"] = previous_rep.name
        calendar = directory.lead_calendar(lead.owner, lead.team)
        if calendar is not None:
            time_zone = calendar.zone.key
    fields["captured_at"] = local_time(lead.created_at, time_zone, locale)
    fields.update({f"attributes.{key}": value for key, value in lead.attributes.items()})
    fields.update({f"variant.{name}": value for name, value in lead.variants.items()})
    if extra:
        fields.update(extra)
    return fields


def _previous_owner(lead: LeadState) -> str | None:
    if not lead.in_pool or not lead.former_owners:
        return lead.owner
    # The rep who lost it last: `former_owners` holds when each one lost it.
    return max(lead.former_owners.items(), key=lambda item: item[1])[0]
