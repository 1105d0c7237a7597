"""A what-if result in business terms: a few sentences with reps' and teams' names.

"Last 30 days (Nov 6 - Dec 6): 41 leads would go to Zhang Min instead of Li Wei.",
"3 more leads would be reclaimed to the pool.", "12 fewer reminders would be sent.",
"No change to nurture enrolments." Assignment moves are grouped by (from, to), largest
first, the first few named and the rest counted. When nothing changes, one sentence says
so. Every word is in the language's table (`SUMMARY_PHRASES` and `SUMMARY_OUTCOMES` of
`rules.vocabulary_en` / `rules.vocabulary_zh_cn`), in English unless asked otherwise.
Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.directory import Directory
from domain.locales import API_DEFAULT_LOCALE, Locale
from replay.diff import AssignmentChange, Movement, ReplayDiff
from rules.vocabulary import Vocabulary, vocabulary

# Assignment moves named one by one; the rest are counted in one sentence.
MOVES_SHOWN = 5


@dataclass(frozen=True)
class Window:
    """Which leads were replayed: first captured in [`captured_from`, `captured_to`), or
    only `lead_id`; `now` is the replay's end (the log's last recorded time)."""

    captured_from: datetime | None = None
    captured_to: datetime | None = None
    now: datetime | None = None
    lead_id: str | None = None


def _day(moment: datetime, other: datetime | None, words: Vocabulary) -> str:
    """ "Nov 6" / "11月6日", with the year when the other end of the window is in another
    year."""
    key = "day" if other is None or other.year == moment.year else "day_in_year"
    return words.summary_phrases[key].format(
        mon=f"{moment:%b}", month=moment.month, day=moment.day, year=moment.year
    )


def _days(span: timedelta) -> int:
    """Whole days in `span`, to the nearest: a window that starts 30 days before a replay
    whose log ended a few minutes ago is "30 days", not 29."""
    return round(span / timedelta(days=1))


def window_in_words(window: Window, locale: Locale = API_DEFAULT_LOCALE) -> str:
    """ "Last 30 days (Nov 6 - Dec 6)", "Nov 1 - Dec 1 (30 days)", "Since Nov 6", …"""
    words = vocabulary(locale)
    phrases = words.summary_phrases
    start, end = window.captured_from, window.captured_to
    if window.lead_id is not None:
        return phrases["one_lead"].format(lead_id=window.lead_id)
    if start is not None and end is None and window.now is not None and window.now >= start:
        return phrases["last_days"].format(
            days=_days(window.now - start),
            start=_day(start, window.now, words),
            end=_day(window.now, start, words),
        )
    if start is not None and end is not None:
        return phrases["between"].format(
            days=_days(end - start), start=_day(start, end, words), end=_day(end, start, words)
        )
    if start is not None:
        return phrases["since"].format(start=_day(start, None, words))
    if end is not None:
        return phrases["before"].format(end=_day(end, None, words))
    return phrases["all_history"]


@dataclass(frozen=True)
class _Names:
    directory: Directory | None
    words: Vocabulary

    def say(self, key: str, **values: object) -> str:
        return self.words.summary_phrases[key].format(**values)

    def leads(self, count: int) -> str:
        return self.say("lead" if count == 1 else "leads", count=f"{count:,}")

    def listing(self, items: list[str]) -> str:
        return self.words.listing(items, "list")

    def rep(self, rep_id: str | None) -> str:
        if rep_id is None:
            return self.say("pool")
        rep = self.directory.rep(rep_id) if self.directory else None
        return rep.name if rep else rep_id

    def team(self, team_id: str | None) -> str:
        if team_id is None:
            return self.say("pool")
        team = self.directory.team(team_id) if self.directory else None
        return self.say("team", name=team.name if team else team_id)


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
        return [names.say("no_move", window=window)]
    said = [
        names.say("move", leads=names.leads(count), to=to, from_=from_)
        for count, to, from_ in moves[:MOVES_SHOWN]
    ]
    sentences = [names.say("first_move", window=window, move=said[0])]
    sentences += [names.say("another_move", move=s[0].upper() + s[1:]) for s in said[1:]]
    rest = moves[MOVES_SHOWN:]
    if rest:
        moved = sum(count for count, _, _ in rest)
        sentences.append(names.say("more_moves", moves=len(rest), leads=names.leads(moved)))
    return sentences


def _outcome_sentences(movements: list[Movement], names: _Names) -> list[str]:
    sentences: list[str] = []
    unchanged: list[str] = []
    for kind, (more, fewer, what) in names.words.summary_outcomes.items():
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
                names.say("same_count", what=what, gained=f"{gained:,}", lost=f"{lost:,}")
            )
        else:
            unchanged.append(what)
    if unchanged:
        sentences.append(names.say("no_change_to", what=names.listing(unchanged)))
    return sentences


def summary_in_words(
    diff: ReplayDiff,
    directory: Directory | None,
    window: Window,
    locale: Locale = API_DEFAULT_LOCALE,
) -> list[str]:
    """The what-if result as sentences in business terms, in `locale`, with directory
    names (an id the directory does not know reads as itself). One sentence when nothing
    changes."""
    names = _Names(directory, vocabulary(locale))
    when = window_in_words(window, locale)
    if diff.unchanged:
        return [names.say("nothing", window=when, leads=names.leads(diff.leads_replayed))]
    sentences = _assignment_sentences(diff, when, names)
    sentences += _outcome_sentences(diff.movements, names)
    if diff.rules_changed:
        sentences.append(names.say("rules_changed", rules=names.listing(diff.rules_changed)))
    return sentences
