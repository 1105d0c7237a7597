"""Histories recorded from earlier versions of LeadWorkflow must still replay: a change that
breaks determinism for running workflows fails here (use `workflow.patched`, see README).
They replay with leadflow's own data converter, and its payloads are byte for byte the
default converter's: what is already in Temporal's histories stays readable both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from delivery.converter import LEAD_DATA_CONVERTER
from domain.state import LoggedEvent
from domain.timers import RunningTimer
from workflows.contracts import (
    CLOSE_PARKED_DECISION,
    DECIDE,
    FIRE_TIMER,
    PARK_DECISION,
    PLAN_DELIVERIES,
    DecideResult,
    OperatorAction,
)
from workflows.lead import EVENT_SIGNAL, QUARANTINE_SIGNAL, LeadWorkflow, LeadWorkflowInput

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=[LeadWorkflow], data_converter=LEAD_DATA_CONVERTER).replay_workflow(
        history
    )


# The result type of each local activity, by the name the workflow schedules it under.
LOCAL_ACTIVITY_RESULTS: dict[str, Any] = {
    DECIDE: DecideResult,
    FIRE_TIMER: DecideResult,
    PLAN_DELIVERIES: dict[str, RunningTimer],
    PARK_DECISION: str,
    CLOSE_PARKED_DECISION: type(None),
}
SIGNAL_PAYLOADS: dict[str, type] = {EVENT_SIGNAL: LoggedEvent, QUARANTINE_SIGNAL: OperatorAction}


def typed_payloads(history: WorkflowHistory) -> list[tuple[Payload, Any]]:
    """Every payload of the workflow's own types in `history`: its input, the events and
    operator actions signalled to it, and the results of its local activities."""
    found: list[tuple[Payload, Any]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attributes = event.workflow_execution_started_event_attributes
            found += [(p, LeadWorkflowInput) for p in attributes.input.payloads]
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signalled = event.workflow_execution_signaled_event_attributes
            found += [(p, SIGNAL_PAYLOADS[signalled.signal_name]) for p in signalled.input.payloads]
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "result" in details:
                [marker] = details["data"].payloads
                activity = json.loads(marker.data).get("activity_type", DECIDE)
                hint = LOCAL_ACTIVITY_RESULTS[activity]
                found += [(p, hint) for p in details["result"].payloads]
    return found


def decode(converter: DataConverter, payload: Payload, hint: type) -> Any:
    [value] = converter.payload_converter.from_payloads([payload], [hint])
    return value


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_payloads_decode_and_encode_as_with_the_default_converter(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    payloads = typed_payloads(history)
    assert {hint for _, hint in payloads} >= {LeadWorkflowInput, LoggedEvent}
    for payload, hint in payloads:
        ours = decode(LEAD_DATA_CONVERTER, payload, hint)
        assert type(ours) is (getattr(hint, "__origin__", None) or hint)
        assert ours == decode(DataConverter.default, payload, hint)
        # (Not always the recorded bytes: fields were added to these classes since.)
        assert LEAD_DATA_CONVERTER.payload_converter.to_payloads(
            [ours]
        ) == DataConverter.default.payload_converter.to_payloads([ours])
