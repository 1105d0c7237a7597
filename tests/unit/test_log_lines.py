"""The log formats and their redaction (leadflow/logs.py): what an operator searching the
lines relies on (fields, context bound where ids are known) and what must never be in
them (keys, passwords, webhook tokens)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from leadflow.logs import LogFormat, Redactions, annotate, bound, handler
from leadflow.settings import Settings

API_KEY = "lf_" + "Ab1-_" * 8 + "xyz"  # the shape of a real key: lf_ + 43 characters


class Captured:
    """A logger writing through leadflow's handler into a buffer, read back as lines."""

    def __init__(self, log_format: LogFormat, redactions: Redactions) -> None:
        self.buffer = io.StringIO()
        self.logger = logging.getLogger(f"leadflow.test.{log_format}")
        self.logger.handlers[:] = [handler(log_format, "api", redactions, self.buffer)]
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def json_log() -> Iterator[Captured]:
    captured = Captured("json", Redactions([]))
    yield captured
    captured.logger.handlers.clear()


def test_a_json_line_has_the_documented_fields(json_log: Captured) -> None:
    json_log.logger.warning("lead %s: held", "L1", extra={"stage": "delivery"})
    [line] = json_log.records()
    assert line["level"] == "warning"
    assert line["logger"] == "leadflow.test.json"
    assert line["process"] == "api"
    assert isinstance(line["pid"], int)
    assert line["event"] == "lead L1: held"
    assert line["stage"] == "delivery"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).tzinfo is not None


def test_bound_fields_are_on_every_line_of_the_block_only(json_log: Captured) -> None:
    with bound(request_id="r-1"):
        json_log.logger.info("inside")
        with bound(lead_id="L1"):
            json_log.logger.info("nested")
    json_log.logger.info("outside")
    inside, nested, outside = json_log.records()
    assert inside["request_id"] == "r-1" and "lead_id" not in inside
    assert (nested["request_id"], nested["lead_id"]) == ("r-1", "L1")
    assert "request_id" not in outside and "lead_id" not in outside


def test_an_id_annotated_in_a_thread_reaches_the_block_that_started_it(
    json_log: Captured,
) -> None:
    async def request() -> None:
        with bound(request_id="r-2"):
            # As FastAPI runs a sync route or dependency: in a thread, with a copy of the context.
            await asyncio.to_thread(annotate, lead_id="L2")
            json_log.logger.info("answered")

    asyncio.run(request())
    annotate(lead_id="nobody's")  # outside any block: nothing to add it to
    json_log.logger.info("later")
    answered, later = json_log.records()
    assert answered["lead_id"] == "L2"
    assert "lead_id" not in later


def test_temporal_info_in_extra_becomes_the_id_fields(json_log: Captured) -> None:
    activity = {
        "activity_type": "decide",
        "workflow_id": "lead-L3",
        "workflow_run_id": "run-1",
        "attempt": 1,
    }
    json_log.logger.info("decided", extra={"temporal_activity": activity})
    json_log.logger.info(
        "fired", extra={"temporal_workflow": {"workflow_id": "lead-L3", "run_id": "run-2"}}
    )
    decided, fired = json_log.records()
    assert (decided["workflow_id"], decided["run_id"], decided["activity_type"]) == (
        "lead-L3",
        "run-1",
        "decide",
    )
    assert (fired["workflow_id"], fired["run_id"]) == ("lead-L3", "run-2")
    assert "temporal_activity" not in decided and "temporal_workflow" not in fired


def test_an_exception_is_in_its_line(json_log: Captured) -> None:
    try:
        raise ValueError("no such rep")
    except ValueError:
        json_log.logger.exception("decision failed")
    [line] = json_log.records()
    assert "ValueError: no such rep" in line["exception"]


# What a line may carry by accident, and the secret in it that must not be logged.
LEAKS = [
    pytest.param(f"authentication with {API_KEY}", API_KEY, id="api-key"),
    pytest.param(
        "headers {'Authorization': 'Bearer sekrit-token-1'}", "sekrit-token-1", id="bearer"
    ),
    pytest.param("(b'authorization', b'Basic dXNlcjpwYXNz')", "dXNlcjpwYXNz", id="basic"),
    pytest.param(
        "connecting to postgresql+psycopg://leadflow:pg-Pa55word@db:5432/leadflow",
        "pg-Pa55word",
        id="database-url",
    ),
    pytest.param("smtp://mailer:smtp-Pa55@mail.example:587 refused", "smtp-Pa55", id="smtp-url"),
    pytest.param(
        "POST https://oapi.dingtalk.com/robot/send?access_token=ding-t0ken-9 failed",
        "ding-t0ken-9",
        id="dingtalk",
    ),
    pytest.param(
        "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?debug=1&key=wecom-k3y-7 failed",
        "wecom-k3y-7",
        id="wecom",
    ),
    pytest.param(
        "POST https://hooks.slack.com/services/T000/B000/slackS3cretPath failed",
        "slackS3cretPath",
        id="slack",
    ),
]


@pytest.mark.parametrize(("message", "secret"), LEAKS)
@pytest.mark.parametrize("log_format", ["json", "human"])
def test_secrets_are_redacted(message: str, secret: str, log_format: LogFormat) -> None:
    captured = Captured(log_format, Redactions([]))
    captured.logger.warning("%s", message)
    try:
        raise RuntimeError(message)
    except RuntimeError:
        captured.logger.exception("failed")
    assert secret not in captured.text
    assert "[redacted]" in captured.text


def test_a_key_prefix_and_plain_words_stay(json_log: Captured) -> None:
    json_log.logger.warning("authentication failed with key %r…", API_KEY[:8])
    json_log.logger.info("the authorization of rep-east-1 is checked; what? http://x.example/a")
    first, second = json_log.records()
    assert API_KEY[:8] in first["event"]
    assert second["event"] == "the authorization of rep-east-1 is checked; what? http://x.example/a"


def test_the_configured_secrets_are_redacted_wherever_they_appear() -> None:
    settings = Settings(
        bootstrap_admin_key="0f3c9a7e5b1d2f4a6c8e0b2d4f6a8c0e",  # `openssl rand -hex 16`
        database_url="postgresql://leadflow:p%40ss%22word@db/leadflow",
        smtp_url="smtp://mailer:mail-secret@mail.example:587",
    )
    captured = Captured("json", Redactions.of(settings))
    captured.logger.info("bootstrap key %s", settings.bootstrap_admin_key)
    captured.logger.info("decoded database password %s", 'p@ss"word')
    captured.logger.info("smtp password alone: %s", "mail-secret")
    assert "0f3c9a7e5b1d2f4a6c8e0b2d4f6a8c0e" not in captured.text
    assert "p@ss" not in captured.text and "mail-secret" not in captured.text
    assert [line["event"].split()[-1] for line in captured.records()] == ["[redacted]"] * 3


def test_the_human_format_reads_as_one_line_with_its_fields() -> None:
    captured = Captured("human", Redactions([]))
    with bound(request_id="r-9", lead_id="L9"):
        captured.logger.info("lead %s: assigned", "L9")
    [line] = captured.text.splitlines()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3} INFO  api leadflow\.test\.human: lead L9: assigned"
        r"  request_id=r-9 lead_id=L9",
        line,
    ), line
    assert "\x1b[" not in line  # not a terminal: no colour codes
