"""One what-if question, asked the same way by `leadflow replay` and `POST /v1/replays`:
a candidate ruleset, what to compare it with, and which leads; `answer` replays the log's
history under both and diffs them (SPEC §8). Reads the store, never writes to it.

The two runs are independent, so on a history of some size they run at once on two
cores: a forked child replays the baseline while the caller's thread replays the
candidate (`replay_runs`). The child shares the history read before the fork (nothing is
pickled on the way in), runs only the pure simulation, never touches the store's
connections, and sends back a `RunOutcome` (a few counts per lead) and its progress;
it dies with the process that forked it, however that one ends.

A replay is stopped by any exception its progress callback raises (a cancel, a stopping
process) or by its time budget, both checked on the caller's thread at each report.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, NoReturn
from uuid import UUID

from domain.directory import Directory
from domain.errors import FieldError, InvalidDocument
from domain.lifecycle import ActiveRuleset
from domain.limits import unsafe_values
from domain.locales import API_DEFAULT_LOCALE, Locale, UnknownLocale, parse_locale
from domain.state import LoggedEvent
from replay.diff import ReplayDiff, RunOutcome, changed_rules, compare, summarise
from replay.simulator import (
    RulesetFor,
    cycle_collection_paused,
    fixed,
    log_horizon,
    recorded_history,
    ruleset_timeline,
    select_history,
    simulate,
)
from replay.summary import Window, summary_in_words
from rules.compile import compile_ruleset
from rules.model import Ruleset
from rules.validation import InvalidRuleset, parse_ruleset
from store.log import EventLog
from store.rulebook import Rulebook

# The two runs of a replay, in the order `answer` makes them.
PHASES = ("baseline", "candidate")

# (phase, events replayed in that phase, events to replay in it)
PhaseProgress = Callable[[str, int, int], None]

_REQUEST_KEYS = {"ruleset", "baseline", "from", "to", "lead_id", "locale"}

# From this many selected events on, the baseline runs in a forked child while the
# candidate runs here. Below it a replay takes about a tenth of a second in one process,
# and a second one saves a few milliseconds at best (docs/decisions.md, "Replay").
PARALLEL_FROM_EVENTS = 1000

# The most a posted candidate may weigh, as compact UTF-8 JSON. The built-in ruleset is
# ~5 KB for 9 rules: this holds hundreds of rules with their templates, and keeps small
# what one request has validated on the API's threads and stored in the `replays` table.
MAX_RULESET_BYTES = 256 * 1024

# prctl(2): the signal the kernel sends a process when its parent dies.
_PR_SET_PDEATHSIG = 1


class ReplayFailed(Exception):
    """The baseline run's child process ended without an outcome (it was killed), or
    failed with an error that cannot be raised again here as it was."""


class ReplayOverTime(Exception):
    """The replay ran past its time budget (`answer`'s `time_limit`); it was stopped at a
    progress report, its forked child killed."""

    def __init__(self, limit_seconds: float) -> None:
        super().__init__(f"the replay exceeded its time budget of {limit_seconds:g} s")
        self.limit_seconds = limit_seconds


@dataclass
class InvalidReplay(InvalidDocument):
    """A replay request with bad fields; the candidate's own errors are under `/ruleset`."""

    code = "invalid_replay"
    what = "replay request"


@dataclass(frozen=True)
class WhatIf:
    """What a candidate ruleset would have changed: compared with `baseline` (a version;
    None: the versions active at each event's time), over the leads first captured in
    [`captured_from`, `captured_to`), or only `lead_id`; its summary in `locale`."""

    candidate: Ruleset
    baseline: int | None = None
    captured_from: datetime | None = None
    captured_to: datetime | None = None
    lead_id: str | None = None
    locale: Locale = API_DEFAULT_LOCALE


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is taken as UTC (a window is
    usually given as a bare date). Raises ValueError when it is neither."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def lead_id_of(raw: object) -> str:
    """The lead id `raw` names, written as the log writes ids (an uppercase or braced UUID
    selects the same lead); ValueError if it is not a UUID."""
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return str(UUID(raw))
    raise ValueError("expected a lead id (a UUID)")


def parse_what_if(
    body: object, directory: Directory, default_locale: Locale = API_DEFAULT_LOCALE
) -> WhatIf:
    """The question a `POST /v1/replays` body asks:
    `{"ruleset": {...}, "baseline"?: int, "from"?: T, "to"?: T, "lead_id"?: str,
    "locale"?: "zh-CN" | "en"}` (no `locale`: `default_locale`, the language of the summary).

    Raises InvalidReplay naming every bad field by JSON Pointer into the body; the
    candidate's errors are the ones `POST /v1/rulesets/validate` reports, under `/ruleset`.
    Whether the baseline version exists is the caller's to check (`check_baseline`).
    """
    if not isinstance(body, Mapping):
        raise InvalidReplay([FieldError("", "expected a JSON object")])
    # First, as for an event: the request is stored and shown back by GET /v1/replays/{id},
    # which could not answer text no store or UTF-8 answer can hold.
    unsafe = unsafe_values(body)
    if unsafe:
        raise InvalidReplay(unsafe)
    errors = [FieldError(f"/{key}", "unknown field") for key in body if key not in _REQUEST_KEYS]
    candidate: Ruleset | None = None
    if "ruleset" not in body:
        errors.append(FieldError("/ruleset", "required: the candidate ruleset document"))
    elif (size := _encoded_size(body["ruleset"])) > MAX_RULESET_BYTES:
        message = (
            f"{size} bytes as JSON; a candidate may take at most {MAX_RULESET_BYTES} (256 KiB)"
        )
        errors.append(FieldError("/ruleset", message))
    else:
        try:
            # Checked as a publish would check it, against the directory.
            candidate = parse_ruleset(body["ruleset"], directory)
        except InvalidRuleset as invalid:
            errors += [FieldError("/ruleset" + e.path, e.message) for e in invalid.errors]
    baseline = body.get("baseline")
    if baseline is not None and (type(baseline) is not int or baseline < 1):
        errors.append(FieldError("/baseline", "expected a ruleset version (an integer ≥ 1)"))
    bounds: dict[str, datetime | None] = {}
    for key in ("from", "to"):
        bounds[key] = None
        if body.get(key) is None:
            continue
        with contextlib.suppress(ValueError, TypeError):  # TypeError: not a string
            bounds[key] = parse_time(body[key])
        if bounds[key] is None:
            errors.append(FieldError(f"/{key}", "expected an ISO 8601 date or date-time"))
    lead_id = body.get("lead_id")
    if lead_id is not None:
        try:
            lead_id = lead_id_of(lead_id)
        except ValueError as bad:
            errors.append(FieldError("/lead_id", str(bad)))
    locale = default_locale
    if body.get("locale") is not None:
        try:
            locale = parse_locale(str(body["locale"]))
        except UnknownLocale as unknown:
            errors.append(FieldError("/locale", str(unknown)))
    if errors or candidate is None:
        raise InvalidReplay(errors)
    return WhatIf(candidate, baseline, bounds["from"], bounds["to"], lead_id, locale)


def _encoded_size(document: object) -> int:
    encoded = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return len(encoded.encode("utf-8", "surrogatepass"))  # JSON may spell a lone surrogate


def check_baseline(question: WhatIf, rulebook: Rulebook) -> None:
    """Raises RulesetNotFound when the question names a version that was never published."""
    if question.baseline is not None:
        rulebook.get(question.baseline)


def answer(
    question: WhatIf,
    event_log: EventLog,
    rulebook: Rulebook,
    progress: PhaseProgress | None = None,
    *,
    parallel_from: int | None = PARALLEL_FROM_EVENTS,
    time_limit: float | None = None,
) -> ReplayDiff:
    """Replay the selected leads' history under the baseline and under the candidate, on
    one virtual clock up to the log's last recorded time, and diff the two runs.

    The runs happen at once in two processes when the history has at least
    `parallel_from` events and this platform can fork (None: always one after the
    other); the diff is the same either way. Reports progress per phase (see `PHASES`),
    always on the caller's thread; an exception raised by `progress` stops the replay
    (and kills its child). With `time_limit` (seconds), raises ReplayOverTime at the
    first progress report after that long. Raises RulesetNotFound for an unknown
    baseline version, ReplayFailed when the baseline's process dies. Writes nothing.
    """
    if time_limit is not None:
        progress = _within(time_limit, progress)
    with cycle_collection_paused():  # the history and both runs: see there
        return _answer(question, event_log, rulebook, progress, parallel_from)


def _within(limit_seconds: float, progress: PhaseProgress | None) -> PhaseProgress:
    """`progress`, raising ReplayOverTime once `limit_seconds` have passed from now."""
    deadline = time.monotonic() + limit_seconds

    def report(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)  # first: how far it got is shown
        if time.monotonic() > deadline:
            raise ReplayOverTime(limit_seconds)

    return report


def _answer(
    question: WhatIf,
    event_log: EventLog,
    rulebook: Rulebook,
    progress: PhaseProgress | None,
    parallel_from: int | None,
) -> ReplayDiff:
    directory = rulebook.directory()
    baseline_for: RulesetFor
    if question.baseline is not None:
        fixed_baseline = rulebook.version(question.baseline)
        baseline_for = fixed(fixed_baseline)
        compared_with = fixed_baseline.ruleset
    else:
        baseline_for = ruleset_timeline(rulebook)
        compared_with = rulebook.active().ruleset
    candidate = ActiveRuleset(None, question.candidate, compile_ruleset(question.candidate))
    history = select_history(
        recorded_history(event_log),
        captured_from=question.captured_from,
        captured_to=question.captured_to,
        lead_id=question.lead_id,
    )
    now = log_horizon(event_log)
    parallel = can_fork() and parallel_from is not None and len(history) >= parallel_from
    before, after = replay_runs(
        history, baseline_for, fixed(candidate), directory, now, progress, parallel=parallel
    )
    diff = compare(before, after, changed_rules(compared_with, question.candidate))
    window = Window(question.captured_from, question.captured_to, now, question.lead_id)
    return replace(diff, summary=summary_in_words(diff, directory, window, question.locale))


def can_fork() -> bool:
    """Whether this platform can fork a child that shares the history (not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def replay_runs(
    history: Sequence[LoggedEvent],
    baseline_for: RulesetFor,
    candidate_for: RulesetFor,
    directory: Directory,
    until: datetime | None,
    progress: PhaseProgress | None = None,
    *,
    parallel: bool,
) -> tuple[RunOutcome, RunOutcome]:
    """The baseline's and the candidate's runs of `history`, summarised for `compare`:
    one after the other, or (`parallel`, where `can_fork`) the baseline in a forked
    child while the candidate runs here. `RunOutcome.replayed_in` says which process
    ran each. Each run is summarised as soon as it ends, so its events are freed."""
    if parallel:
        return _runs_in_two_processes(
            history, baseline_for, candidate_for, directory, until, progress
        )
    outcomes = [
        summarise(simulate(history, ruleset_for, directory, until=until, progress=report))
        for ruleset_for, report in (
            (baseline_for, _phase(progress, "baseline")),
            (candidate_for, _phase(progress, "candidate")),
        )
    ]
    return outcomes[0], outcomes[1]


def _phase(progress: PhaseProgress | None, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(phase, done, total)


# What the child sends over its pipe, tagged by the first item.
_PROGRESS, _DONE, _FAILED = "progress", "done", "failed"


@dataclass(frozen=True)
class _ChildError:
    """An exception raised in the child, as it can cross the pipe: pickled when it can
    be, and always its kind, message and traceback."""

    pickled: bytes | None
    kind: str
    message: str
    traceback: str

    @classmethod
    def of(cls, error: Exception) -> _ChildError:
        try:
            pickled: bytes | None = pickle.dumps(error)
        except Exception:  # an attribute that does not pickle: sent by name and message
            pickled = None
        text = "".join(traceback.format_exception(error))
        return cls(pickled, type(error).__name__, str(error), text)

    def raise_here(self) -> None:
        """Raise the child's exception again, chained to a ReplayFailed holding the
        child's traceback; a ReplayFailed with its kind and message if it does not
        unpickle."""
        where = ReplayFailed(f"in the baseline run's child process:\n{self.traceback}")
        try:
            error = pickle.loads(self.pickled) if self.pickled is not None else None
        except Exception:  # e.g. an __init__ whose arguments are not its args
            error = None
        if not isinstance(error, Exception):
            raise ReplayFailed(f"the baseline run failed: {self.kind}: {self.message}") from where
        raise error from where


def _die_with_parent(parent: int) -> None:
    """Have Linux SIGKILL this (forked) process when `parent`, the pid that forked it,
    dies; exit at once if it died already (before this ran, the child was reparented).

    A daemon child is ended by its parent's clean exit only: an API killed outright
    (kill -9, the OOM killer) would leave it replaying for nobody and holding the API's
    inherited listening socket, so a restarted API could not bind its port. Dying with
    the parent, it frees the socket with it, so the child need not close what it
    inherited. Linux means the forking *thread*: the one that waits for this child
    until it ends (`_runs_in_two_processes`), so it never exits first."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _replay_in_child(
    sending: Connection,
    parent: int,
    history: Sequence[LoggedEvent],
    ruleset_for: RulesetFor,
    directory: Directory,
    until: datetime | None,
    reports: bool,
) -> None:
    """The forked child's whole work: one run of the already-read history, summarised
    and sent with its progress. Only pure code and its pipe: the store's inherited
    connections are never used, and multiprocessing ends the child with `os._exit`, so
    no atexit handler or finaliser closes them on the way out either."""
    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent handles it and ends this child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def report(done: int, total: int) -> None:
        sending.send((_PROGRESS, done, total))

    try:
        run = simulate(
            history, ruleset_for, directory, until=until, progress=report if reports else None
        )
        sending.send((_DONE, summarise(run)))
    except BrokenPipeError:
        pass  # the parent is gone or gave up on this run: nobody to tell
    except Exception as error:
        sending.send((_FAILED, _ChildError.of(error)))
    finally:
        sending.close()


class _ChildRun:
    """The baseline run in the forked child, as the parent follows it: progress is
    forwarded on the parent's thread, the outcome (or the child's error) taken once."""

    def __init__(self, child: BaseProcess, receiving: Connection, progress: PhaseProgress | None):
        self.child = child
        self.receiving = receiving
        self.progress = progress
        self.outcome: RunOutcome | None = None

    def forward_progress(self) -> None:
        """Take whatever the child has sent so far, without waiting."""
        while self.outcome is None and self.receiving.poll():
            self._take()

    def wait_outcome(self) -> RunOutcome:
        """Wait for the child's outcome, forwarding its progress meanwhile; raises its
        error, or ReplayFailed if it exits without an outcome."""
        while self.outcome is None:
            wait([self.receiving, self.child.sentinel])
            if self.receiving.poll():
                self._take()
            else:  # it exited (its end of the pipe too: poll would have seen the EOF)
                self._ended()
        return self.outcome

    def _take(self) -> None:
        try:
            message = self.receiving.recv()
        except EOFError:
            self._ended()
        if message[0] == _PROGRESS:
            if self.progress is not None:
                self.progress("baseline", message[1], message[2])
        elif message[0] == _DONE:
            self.outcome = message[1]
        else:
            message[1].raise_here()

    def _ended(self) -> NoReturn:
        self.child.join()
        raise ReplayFailed(
            f"the baseline run's child process ended without an outcome "
            f"(exit code {self.child.exitcode})"
        )


def _runs_in_two_processes(
    history: Sequence[LoggedEvent],
    baseline_for: RulesetFor,
    candidate_for: RulesetFor,
    directory: Directory,
    until: datetime | None,
    progress: PhaseProgress | None,
) -> tuple[RunOutcome, RunOutcome]:
    fork = multiprocessing.get_context("fork")
    receiving, sending = fork.Pipe(duplex=False)
    child = fork.Process(
        target=_replay_in_child,
        args=(sending, os.getpid(), history, baseline_for, directory, until, progress is not None),
        name="replay-baseline",
        daemon=True,  # ended by this process's clean exit; a kill: `_die_with_parent`
    )
    succeeded = False
    try:
        try:
            child.start()
        finally:
            sending.close()  # the child's end: once it exits, reading here sees EOF
        baseline = _ChildRun(child, receiving, progress)

        def report(done: int, total: int) -> None:
            baseline.forward_progress()
            if progress is not None:
                progress("candidate", done, total)

        after = summarise(simulate(history, candidate_for, directory, until=until, progress=report))
        before = baseline.wait_outcome()
        succeeded = True
        return before, after
    finally:
        if child.pid is not None:  # started
            if not succeeded:
                child.kill()  # this side failed or was stopped: its run is not needed
            child.join()
            child.close()
        receiving.close()


def request_json(question: WhatIf, document: Any) -> dict[str, Any]:
    """The question as JSON, with the candidate `document` as it was posted."""
    return {
        "ruleset": document,
        "baseline": question.baseline,
        "from": None if question.captured_from is None else question.captured_from.isoformat(),
        "to": None if question.captured_to is None else question.captured_to.isoformat(),
        "lead_id": question.lead_id,
        "locale": question.locale,
    }
