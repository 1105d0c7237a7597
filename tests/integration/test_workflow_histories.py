"""Histories recorded from earlier versions of LeadWorkflow must still replay: a change that
breaks determinism for running workflows fails here (use `workflow.patched`, see README).
They replay with leadflow's own data converter, and its payloads are byte for byte the
default converter's: what is already in Temporal's histories stays readable both ways."""

from __future__ import annotations

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
from workflows.contracts import DecideResult
from workflows.lead import EVENT_SIGNAL, LeadWorkflow, LeadWorkflowInput

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=[LeadWorkflow], data_converter=LEAD_DATA_CONVERTER).replay_workflow(
        history
    )


def typed_payloads(history: WorkflowHistory) -> list[tuple[Payload, type]]:
    """Every payload of the workflow's own types in `history`: its input, the events
    signalled to it, and the results of its decisions (local activities)."""
    found: list[tuple[Payload, type]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attributes = event.workflow_execution_started_event_attributes
            found += [(p, LeadWorkflowInput) for p in attributes.input.payloads]
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signalled = event.workflow_execution_signaled_event_attributes
            if signalled.signal_name == EVENT_SIGNAL:
                found += [(p, LoggedEvent) for p in signalled.input.payloads]
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "result" in details:
                found += [(p, DecideResult) for p in details["result"].payloads]
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
        assert type(ours) is hint
        assert ours == decode(DataConverter.default, payload, hint)
        # (Not always the recorded bytes: fields were added to these classes since.)
        assert LEAD_DATA_CONVERTER.payload_converter.to_payloads(
            [ours]
        ) == DataConverter.default.payload_converter.to_payloads([ours])
