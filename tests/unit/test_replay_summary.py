"""The what-if result in business terms (replay.summary): moves grouped by who loses and
who gains, with names; more or fewer reclaims, reminders and enrolments; one sentence
when nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.directory import parse_directory
from replay.diff import AssignmentChange, Movement, ReplayDiff
from replay.summary import MOVES_SHOWN, Window, summary_in_words, window_in_words
from store.rulebook import default_directory_document

DIRECTORY = parse_directory(default_directory_document())
NOW = datetime(2026, 12, 6, 20, tzinfo=UTC)
# As the console asks: from 30 days before the wall clock; the log's last event (the
# replay's "now") a few minutes earlier still reads "30 days".
LAST_30_DAYS = Window(captured_from=datetime(2026, 11, 6, 20, 5, tzinfo=UTC), now=NOW)


def moves(
    count: int, from_: str | None, to: str | None, team: str = "east"
) -> list[AssignmentChange]:
    return [
        AssignmentChange(
            f"{from_}-{to}-{i}", from_, team if from_ else None, to, team if to else None
        )
        for i in range(count)
    ]


def diff(
    assignments: list[AssignmentChange] | None = None,
    movements: list[Movement] | None = None,
    rules_changed: list[str] | None = None,
) -> ReplayDiff:
    return ReplayDiff(
        leads_replayed=60,
        events_replayed=300,
        assignments=assignments or [],
        reps=[],
        teams=[],
        movements=movements or [],
        rules=[],
        rules_changed=rules_changed or [],
    )


def test_the_brief_s_example_reads_in_names() -> None:
    changed = diff(
        moves(41, "rep-east-1", "rep-east-2"),
        [
            Movement("reclaim", "no_follow_up_48h", 5, 7, ["a", "b"]),
            Movement("reclaim", "idle_7d", 2, 3, ["c"]),
            Movement("reminder", "first_follow_up", 20, 8, [], ["d"] * 12),
        ],
    )
    assert summary_in_words(changed, DIRECTORY, LAST_30_DAYS) == [
        "Last 30 days (Nov 6 \u2013 Dec 6): 41 leads would go to Zhang Min instead of Li Wei.",
        "3 more leads would be reclaimed to the pool.",
        "12 fewer reminders would be sent.",
        "No change to nurture enrolments, emails to leads and notifications.",
    ]


def test_moves_are_grouped_largest_first_and_capped() -> None:
    assignments = (
        moves(2, "rep-east-1", "rep-west-1")
        + moves(9, "rep-west-2", None)
        + moves(1, None, "rep-east-2")
        + moves(4, "rep-east-1", "rep-east-2")
    )
    for rep in ["rep-a", "rep-b", "rep-c"]:
        assignments += moves(1, "rep-west-1", rep)
    sentences = summary_in_words(diff(assignments), None, Window())
    assert sentences[:MOVES_SHOWN] == [
        "Over all recorded history: 9 leads would go to the pool instead of rep-west-2.",
        "4 leads would go to rep-east-2 instead of rep-east-1.",
        "2 leads would go to rep-west-1 instead of rep-east-1.",
        # Ties in the order of the names they move from, then to.
        "1 lead would go to rep-a instead of rep-west-1.",
        "1 lead would go to rep-b instead of rep-west-1.",
    ]
    assert sentences[MOVES_SHOWN] == "And 2 more moves of 2 leads."


def test_an_unknown_rep_reads_as_its_id_and_a_team_move_names_the_teams() -> None:
    team_move = AssignmentChange("x", "rep-east-1", "east", "rep-east-1", "west")
    assignments = [*moves(1, "rep-gone", "rep-east-1"), team_move]
    sentences = summary_in_words(diff(assignments), DIRECTORY, Window())
    assert "1 lead would go to Li Wei instead of rep-gone" in sentences[0]
    assert sentences[1] == "1 lead would go to team West instead of team East."


def test_the_same_count_for_other_leads_and_changed_rules_are_said() -> None:
    changed = diff(
        movements=[Movement("nurture enrolment", "weekly-30d", 4, 4, ["a"], ["b"])],
        rules_changed=["east-website", "remind"],
    )
    sentences = summary_in_words(changed, DIRECTORY, Window(lead_id="L1"))
    assert sentences[0] == "For lead L1: every lead would keep its owner."
    assert (
        "As many nurture enrolments as before, but for other leads (1 more, 1 fewer)." in sentences
    )
    assert "No change to reclaims, reminders, emails to leads and notifications." in sentences
    assert sentences[-1] == "Rules the candidate changes: east-website and remind."


def test_nothing_changed_is_one_sentence() -> None:
    assert summary_in_words(diff(), DIRECTORY, LAST_30_DAYS) == [
        "Last 30 days (Nov 6 \u2013 Dec 6): the candidate would change nothing for the 60 "
        "leads replayed."
    ]


def test_windows_read_as_dates() -> None:
    start, end = datetime(2025, 12, 20, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)
    assert window_in_words(Window(start, end)) == "Dec 20, 2025 \u2013 Jan 5, 2026 (16 days)"
    assert window_in_words(Window(captured_from=start)) == "Since Dec 20"
    assert window_in_words(Window(captured_to=end)) == "Before Jan 5"
