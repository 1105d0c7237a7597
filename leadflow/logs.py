"""How every leadflow process logs: one setup, called by each process's entry point.

Every module keeps logging through the standard library (`logging.getLogger(__name__)`);
one handler on stderr turns each record into one line:

- `json` (the default of `leadflow api|worker|projector`): one JSON object per line with
  `ts` (ISO-8601 UTC), `level`, `logger`, `process` (api, worker, projector, dev), `pid`,
  `event` (the message), the context fields below, any `extra` the call passed, and
  `exception` when there is one;
- `human` (the default of `leadflow dev` and its children): time, level, process, logger,
  message and the context fields as `key=value`, coloured when stderr is a terminal.

Context fields are bound with contextvars where the ids are known, not passed to every
log call: `bound(...)` around a unit of work (an HTTP request, an activity), `annotate(...)`
to add an id learnt inside it (a route that resolved the lead). The worker's activities
get the workflow id, run id, activity type and lead id from `ActivityLogContext`, a
Temporal interceptor; the SDK's own `workflow.logger`/`activity.logger` lines have theirs
from the `extra` Temporal adds. Code below `leadflow` in the flow (the dispatcher, the
activities) names an id with `extra={"lead_id": ...}`, which lands in the same field.

Secrets never reach a line: each line is redacted last (API keys, `Authorization`
values, passwords in URLs, webhook tokens in query strings and Slack hook paths, and the
configured secrets themselves), see `Redactions`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TextIO
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from leadflow.settings import Settings

LogFormat = Literal["json", "human"]

# Loggers that say too much at INFO for an operator.
# alembic narrates every step; store.schema logs each upgrade in one line.
QUIET_LOGGERS = ("httpx", "temporalio.worker._workflow_instance", "alembic")

# The context of the unit of work running now (a request, an activity); None outside one.
# A dict, so that `annotate` from a thread the unit of work started (FastAPI's thread
# pool copies the context: the same dict) is seen by whoever bound it.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "leadflow_log_context", default=None
)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside the block (and in the tasks and threads it starts with a
    copy of its context) carries `fields`, and those of any enclosing block."""
    outer = _context.get()
    token = _context.set({**outer, **fields} if outer else fields)
    try:
        yield
    finally:
        _context.reset(token)


def annotate(**fields: Any) -> None:
    """Add `fields` to the innermost `bound` block, for the rest of it; nothing outside one
    (there is no unit of work to describe)."""
    current = _context.get()
    if current is not None:
        current.update(fields)


class ActivityLogContext(Interceptor):
    """Binds each activity's workflow id, run id, activity type and, when its input names
    one, lead id, for every line logged while it runs. Temporal runs synchronous
    activities on an executor thread without the caller's contextvars, so the function
    itself is wrapped to bind them in that thread."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivity(next)


class _BindActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        lead_id = getattr(next(iter(input.args), None), "lead_id", None)
        fields: dict[str, Any] = {} if lead_id is None else {"lead_id": str(lead_id)}
        fields.update(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity_type=info.activity_type,
        )
        if not inspect.iscoroutinefunction(input.fn):
            input.fn = functools.partial(_call_bound, fields, input.fn)
        with bound(**fields):
            return await self.next.execute_activity(input)


def _call_bound(fields: dict[str, Any], fn: Callable[..., Any], *args: Any) -> Any:
    with bound(**fields):
        return fn(*args)


# --- redaction -----------------------------------------------------------------------------

REDACTED = "[redacted]"
# (pattern, replacement), applied in order to a line that may hold a secret.
_PATTERNS = [
    # A whole API key (`lf_` + 43 characters); its 8-character prefix (`lf_AbCdE`) stays.
    (re.compile(r"\blf_[A-Za-z0-9_-]{16,}"), "lf_" + REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;)]+"), r"\1" + REDACTED),
    # `Authorization: Basic …`, `("authorization", "…")` as headers print.
    (
        re.compile(
            r"(?i)(authorization['\"]?\s*[:=,]\s*b?['\"]?)(?!bearer\b)(?:[a-z0-9_-]+\s+)?"
            r"[^\s\"',;)]+"
        ),
        r"\1" + REDACTED,
    ),
    # user:password@ in any URL (database, SMTP, webhooks).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@\"']*:)[^/\s@\"']+@"), r"\1" + REDACTED + "@"),
    # Webhook secrets in query strings: DingTalk `access_token`, WeCom `key`, signatures.
    (
        re.compile(
            r"(?i)([?&](?:access_token|token|key|secret|sign|signature|sig|password|api_key)=)"
            r"[^&\s\"'#]+"
        ),
        r"\1" + REDACTED,
    ),
    # Slack incoming webhooks carry their secret in the path.
    (re.compile(r"(?i)(hooks\.slack\.com/services/)[^\s\"'?#]+"), r"\1" + REDACTED),
]
# A line holding none of these (lower-cased) holds no secret the patterns could find: most
# lines, checked with a few substring searches (one case-insensitive regex search over the
# line costs several times more).
_MARKERS = ("lf_", "://", "?", "bearer", "authorization", "slack")
# A configured secret shorter than this is not searched for literally (it would blank out
# common words); the patterns above still find it in its URL.
MIN_LITERAL_SECRET = 6


class Redactions:
    """Removes secrets from a rendered line: the configured ones, wherever they appear
    (as they are, URL-decoded and JSON-escaped), and anything shaped like an API key,
    an `Authorization` value, a URL password or a webhook token."""

    def __init__(self, secrets: list[str]) -> None:
        literal: set[str] = set()
        for secret in secrets:
            for form in (secret, unquote(secret), json.dumps(secret, ensure_ascii=False)[1:-1]):
                if len(form) >= MIN_LITERAL_SECRET:
                    literal.add(form)
        # Longest first, so that a secret containing another is removed whole.
        self.literal = sorted(literal, key=len, reverse=True)

    @classmethod
    def of(cls, settings: Settings) -> Redactions:
        """The secrets `settings` holds: the bootstrap admin key and the passwords of the
        database and SMTP URLs."""
        secrets = [settings.bootstrap_admin_key or ""]
        if settings.database_url:
            secrets.append(make_url(settings.sqlalchemy_url).password or "")
        if settings.smtp_url:
            secrets.append(urlsplit(settings.smtp_url).password or "")
        return cls([secret for secret in secrets if secret])

    def __call__(self, line: str) -> str:
        for secret in self.literal:
            if secret in line:
                line = line.replace(secret, REDACTED)
        lowered = line.lower()
        if any([marker in lowered for marker in _MARKERS]):
            for pattern, replacement in _PATTERNS:
                line = pattern.sub(replacement, line)
        return line


# --- formats -------------------------------------------------------------------------------

# What every LogRecord holds; anything else on a record came in `extra` (uvicorn adds a
# `color_message`, Temporal private `__temporal_…` markers: not for the reader).
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)
# Temporal's loggers put the workflow's or activity's info in `extra` under these names.
_TEMPORAL_INFO = {
    "temporal_workflow": {"workflow_id": "workflow_id", "run_id": "run_id"},
    "temporal_activity": {
        "workflow_id": "workflow_id",
        "workflow_run_id": "run_id",
        "activity_type": "activity_type",
    },
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context: what is bound now, then what the call passed in `extra`."""
    fields = dict(_context.get() or ())
    attributes = record.__dict__
    for name in [name for name in attributes if name not in _RECORD_ATTRIBUTES]:
        value = attributes[name]
        if name.startswith("_"):
            continue
        renamed = _TEMPORAL_INFO.get(name)
        if renamed is None:
            fields[name] = value
        elif isinstance(value, Mapping):
            fields.update({field: value[key] for key, field in renamed.items() if key in value})
    return fields


_encoder = json.JSONEncoder(ensure_ascii=False, default=str)
# The last second formatted, and its text: lines come many to a second.
_last_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    global _last_second
    second = int(created)
    if _last_second[0] != second:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_last_second[1]}.{int(created % 1 * 1000):03d}Z"


class JsonLines(logging.Formatter):
    """One JSON object per record (the module's docstring lists the fields)."""

    def __init__(self, process: str, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.process = process
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
            "pid": record.process,
            "event": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = record.stack_info
        return self.redact(_encoder.encode(line))


_COLOURS = {
    logging.DEBUG: "\x1b[2m",
    logging.INFO: "\x1b[32m",
    logging.WARNING: "\x1b[33m",
    logging.ERROR: "\x1b[31m",
    logging.CRITICAL: "\x1b[1;31m",
}
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


class HumanLines(logging.Formatter):
    """`12:00:01.234 INFO  worker activities.decisions: lead …: … lead_id=… workflow_id=…`,
    the level coloured and the fields dimmed when `colour` (stderr is a terminal)."""

    def __init__(self, process: str, redact: Callable[[str], str], colour: bool) -> None:
        super().__init__()
        self.process = process
        self.redact = redact
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = f"{record.levelname:<5}"
        fields = " ".join(f"{name}={value}" for name, value in _fields(record).items())
        if self.colour:
            level = f"{_COLOURS.get(record.levelno, '')}{level}{_RESET}"
            fields = f"{_DIM}{fields}{_RESET}" if fields else ""
        line = (
            f"{clock}.{int(record.msecs):03d} {level} {self.process} {record.name}: "
            f"{record.getMessage()}"
        )
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redact(line)


def handler(
    log_format: LogFormat, process: str, redactions: Redactions, stream: TextIO
) -> logging.Handler:
    """A handler writing `log_format` lines to `stream` (the processes: stderr; the tests:
    a buffer they read back)."""
    out = logging.StreamHandler(stream)
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonLines(process, redactions)
    else:
        formatter = HumanLines(process, redactions, colour=stream.isatty())
    out.setFormatter(formatter)
    return out


def configure(settings: Settings, process: str, default_format: LogFormat = "json") -> None:
    """Send every record of this process to stderr in `settings.log_format` (else
    `default_format`) at `settings.log_level`, secrets redacted."""
    log_format: LogFormat = settings.log_format or default_format
    root = logging.getLogger()
    root.handlers[:] = [handler(log_format, process, Redactions.of(settings), sys.stderr)]
    root.setLevel(settings.log_level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # No line shows the caller's file and line, the thread or the multiprocessing name:
    # not looked up for every record (the logging HOWTO's "Optimization"; the caller's
    # frame was a sixth of an access line's cost).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    # Their info is in the line's fields; appended to the message too it would be said twice.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
