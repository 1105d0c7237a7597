"""A what-if result in business terms: a few sentences with reps' and teams' names.

"Last 30 days (Nov 6 - Dec 6): 41 leads would go to Zhang Min instead of Li Wei.",
"3 more leads would be reclaimed to the pool.", "12 fewer reminders would be sent.",
"No change to nurture enrolments." Assignment moves are grouped by (from, to), largest
first, the first few named and the rest counted. When nothing changes, one sentence says
so. Every word is in `PHRASES`, the replay layer's one place for them. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.directory import Directory
from replay.diff import AssignmentChange, Movement, ReplayDiff

# Assignment moves named one by one; the rest are counted in one sentence.
MOVES_SHOWN = 5

PHRASES: dict[str, str] = {
    "last_days": "Last {days} days ({start} \u2013 {end})",
    "between": "{start} \u2013 {end} ({days} days)",
    "since": "Since {start}",
    "before": "Before {end}",
    "all_history": "Over all recorded history",
    "one_lead": "For lead {lead_id}",
    "nothing": "{window}: the candidate would change nothing for the {leads} replayed.",
    "leads": "{count} leads",
    "lead": "{count} lead",
    "first_move": "{window}: {move}.",
    "no_move": "{window}: every lead would keep its owner.",
    "move": "{leads} would go to {to} instead of {from_}",
    "more_moves": "And {moves} more moves of {leads}.",
    "pool": "the pool",
    "team": "team {name}",
    "same_count": "As many {what} as before, but for other leads ({gained} more, {lost} fewer).",
    "no_change_to": "No change to {what}.",
    "rules_changed": "Rules the candidate changes: {rules}.",
    "list": "{rest} and {last}",
}
# Per outcome kind (`replay.diff._outcome`): the sentence for more and for fewer, and the
# words for "no change to …".
OUTCOMES: dict[str, tuple[str, str, str]] = {
    "reclaim": (
        "{count} more leads would be reclaimed to the pool.",
        "{count} fewer leads would be reclaimed to the pool.",
        "reclaims",
    ),
    "reminder": (
        "{count} more reminders would be sent.",
        "{count} fewer reminders would be sent.",
        "reminders",
    ),
    "nurture enrolment": (
        "{count} more nurture enrolments.",
        "{count} fewer nurture enrolments.",
        "nurture enrolments",
    ),
    "email to lead": (
        "{count} more emails would go to leads.",
        "{count} fewer emails would go to leads.",
        "emails to leads",
    ),
    "notification": (
        "{count} more notifications would be sent.",
        "{count} fewer notifications would be sent.",
        "notifications",
    ),
}


@dataclass(frozen=True)
class Window:
    """Which leads were replayed: first captured in [`captured_from`, `captured_to`), or
    only `lead_id`; `now` is the replay's end (the log's last recorded time)."""

    captured_from: datetime | None = None
    captured_to: datetime | None = None
    now: datetime | None = None
    lead_id: str | None = None


def _day(moment: datetime, other: datetime | None) -> str:
    """ "Nov 6", with the year when the other end of the window is in another year."""
    text = f"{moment:%b} {moment.day}"
    return text if other is None or other.year == moment.year else f"{text}, {moment.year}"


def _days(span: timedelta) -> int:
    """Whole days in `span`, to the nearest: a window that starts 30 days before a replay
    whose log ended a few minutes ago is "30 days", not 29."""
    return round(span / timedelta(days=1))


def window_in_words(window: Window) -> str:
    """ "Last 30 days (Nov 6 - Dec 6)", "Nov 1 - Dec 1 (30 days)", "Since Nov 6", …"""
    start, end = window.captured_from, window.captured_to
    if window.lead_id is not None:
        return PHRASES["one_lead"].format(lead_id=window.lead_id)
    if start is not None and end is None and window.now is not None and window.now >= start:
        return PHRASES["last_days"].format(
            days=_days(window.now - start),
            start=_day(start, window.now),
            end=_day(window.now, start),
        )
    if start is not None and end is not None:
        return PHRASES["between"].format(
            days=_days(end - start), start=_day(start, end), end=_day(end, start)
        )
    if start is not None:
        return PHRASES["since"].format(start=_day(start, None))
    if end is not None:
        return PHRASES["before"].format(end=_day(end, None))
    return PHRASES["all_history"]


def _leads(count: int) -> str:
    return PHRASES["lead" if count == 1 else "leads"].format(count=f"{count:,}")


def _listing(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return PHRASES["list"].format(rest=", ".join(words[:-1]), last=words[-1])


@dataclass(frozen=True)
class _Names:
    directory: Directory | None

    def rep(self, rep_id: str | None) -> str:
        if rep_id is None:
            return PHRASES["pool"]
        rep = self.directory.rep(rep_id) if self.directory else None
        return rep.name if rep else rep_id

    def team(self, team_id: str | None) -> str:
        if team_id is None:
            return PHRASES["pool"]
        team = self.directory.team(team_id) if self.directory else None
        return PHRASES["team"].format(name=team.name if team else team_id)


def _moves(changes: list[AssignmentChange], names: _Names) -> list[tuple[int, str, str]]:
    """(count, to, from) per (from, to) pair of holders, largest first: reps, or teams
    where the owner stays and only the team changes."""
    # Counted by id first (a replay may move tens of thousands of leads), named after.
    reps: Counter[tuple[str | None, str | None]] = Counter()
    teams: Counter[tuple[str | None, str | None]] = Counter()
    for change in changes:
        if change.from_owner != change.to_owner:
            reps[change.from_owner, change.to_owner] += 1
        else:
            teams[change.from_team, change.to_team] += 1
    pairs: Counter[tuple[str, str]] = Counter()
    for (from_, to), count in reps.items():
        pairs[names.rep(from_), names.rep(to)] += count
    for (from_, to), count in teams.items():
        pairs[names.team(from_), names.team(to)] += count
    ordered = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
    return [(count, to, from_) for (from_, to), count in ordered]


def _assignment_sentences(diff: ReplayDiff, window: str, names: _Names) -> list[str]:
    moves = _moves(diff.assignments, names)
    if not moves:
        return [PHRASES["no_move"].format(window=window)]
    said = [
        PHRASES["move"].format(leads=_leads(count), to=to, from_=from_)
        for count, to, from_ in moves[:MOVES_SHOWN]
    ]
    sentences = [PHRASES["first_move"].format(window=window, move=said[0])]
    sentences += [s[0].upper() + s[1:] + "." for s in said[1:]]
    rest = moves[MOVES_SHOWN:]
    if rest:
        moved = sum(count for count, _, _ in rest)
        sentences.append(PHRASES["more_moves"].format(moves=len(rest), leads=_leads(moved)))
    return sentences


def _outcome_sentences(movements: list[Movement]) -> list[str]:
    sentences: list[str] = []
    unchanged: list[str] = []
    for kind, (more, fewer, what) in OUTCOMES.items():
        rows = [m for m in movements if m.kind == kind]
        delta = sum(m.candidate - m.baseline for m in rows)
        if delta > 0:
            sentences.append(more.format(count=f"{delta:,}"))
        elif delta < 0:
            sentences.append(fewer.format(count=f"{-delta:,}"))
        elif rows:
            gained = len({lead for m in rows for lead in m.gained})
            lost = len({lead for m in rows for lead in m.lost})
            sentences.append(
                PHRASES["same_count"].format(what=what, gained=f"{gained:,}", lost=f"{lost:,}")
            )
        else:
            unchanged.append(what)
    if unchanged:
        sentences.append(PHRASES["no_change_to"].format(what=_listing(unchanged)))
    return sentences


def summary_in_words(diff: ReplayDiff, directory: Directory | None, window: Window) -> list[str]:
    """The what-if result as sentences in business terms, with directory names (an id
    the directory does not know reads as itself). One sentence when nothing changes."""
    names = _Names(directory)
    when = window_in_words(window)
    if diff.unchanged:
        return [PHRASES["nothing"].format(window=when, leads=_leads(diff.leads_replayed))]
    sentences = _assignment_sentences(diff, when, names)
    sentences += _outcome_sentences(diff.movements)
    if diff.rules_changed:
        sentences.append(PHRASES["rules_changed"].format(rules=_listing(diff.rules_changed)))
    return sentences
