"""Talking to Temporal: connecting, delivering lead events by signal-with-start, and the
readiness probes. Everything that holds a Temporal client lives here or in the worker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import typing
import weakref
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.state import LoggedEvent
from store.quarantine import DECISION, Quarantine, QuarantineItem, QuarantineItemClosed
from workflows.contracts import OperatorAction
from workflows.lead import (
    EVENT_SIGNAL,
    QUARANTINE_SIGNAL,
    LeadWorkflow,
    LeadWorkflowInput,
    workflow_id_for,
)

log = logging.getLogger(__name__)


class DataclassFields(JSONTypeConverter):
    """Decodes a dataclass as temporalio's JSON converter does, with each class's field
    types resolved once instead of on every decode.

    temporalio calls `typing.get_type_hints` (which evaluates every string annotation of
    the class and its bases) for each dataclass it decodes: for every `LoggedEvent`
    signal, `DecideResult` and `LeadState` (~9% of the worker's CPU, BENCHMARKS.md). The
    values are the default converter's. Weakly keyed: the tests' full sandbox re-imports
    `workflows.lead`, and so makes a new `LeadWorkflowInput` class, for every workflow."""

    def __init__(self) -> None:
        self._hints: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()
        # What `value_to_type` takes, for the fields' own dataclasses.
        self.converters: list[JSONTypeConverter] = [self]

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        # What `temporalio.converter.value_to_type` does for a dataclass, step for step.
        if not isinstance(value, dict):
            raise TypeError(f"Cannot convert to dataclass {hint}, value is {type(value)} not dict")
        hints = self._hints.get(hint)
        if hints is None:
            hints = self._hints[hint] = typing.get_type_hints(hint)
        field_values: dict[str, Any] = {}
        non_init_field_values: dict[str, Any] = {}
        for field in dataclasses.fields(hint):
            field_value = value.get(field.name, dataclasses.MISSING)
            if field_value is dataclasses.MISSING:
                continue  # required ones make the instantiation below fail
            try:
                converted = value_to_type(hints[field.name], field_value, self.converters)
            except Exception as err:
                raise TypeError(
                    f"Failed converting field {field.name} on dataclass {hint}"
                ) from err
            if field.init:
                field_values[field.name] = converted
            else:
                non_init_field_values[field.name] = converted
        decoded = hint(**field_values)
        for name, field_value in non_init_field_values.items():
            object.__setattr__(decoded, name, field_value)
        return decoded


class ShallowDataclassEncoder(AdvancedJSONEncoder):
    """temporalio's JSON encoder, minus a deep copy: it turns a dataclass into a dict with
    `dataclasses.asdict`, which copies every nested value before `json` walks it again;
    here the dict holds the fields' values themselves and `json` comes back here for each
    nested dataclass. The JSON text is the same (keys are sorted either way)."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {field.name: getattr(o, field.name) for field in dataclasses.fields(o)}
        return super().default(o)


class LeadPayloadConverter(CompositePayloadConverter):
    """Temporal's default payload converter, its JSON encoding through
    `ShallowDataclassEncoder` and its decoding through `DataclassFields`."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(
                    encoder=ShallowDataclassEncoder,
                    custom_type_converters=_DATACLASS_FIELDS.converters,
                )
                if type(converter) is JSONPlainPayloadConverter
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


_DATACLASS_FIELDS = DataclassFields()  # one cache for every converter instance
# Every client and worker of leadflow's workflows (and the replays of their histories) use
# it; payloads stay byte for byte what the default converter makes.
LEAD_DATA_CONVERTER = DataConverter(payload_converter_class=LeadPayloadConverter)


async def connect(
    address: str,
    namespace: str,
    *,
    wait_seconds: float | None = None,
    data_converter: DataConverter = LEAD_DATA_CONVERTER,
) -> Client:
    """Connect; with `wait_seconds`, keep retrying that long (Temporal may still be starting)."""
    deadline = None if wait_seconds is None else asyncio.get_running_loop().time() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await Client.connect(address, namespace=namespace, data_converter=data_converter)
        except Exception:
            if deadline is None or asyncio.get_running_loop().time() > deadline:
                raise
            log.info("Temporal at %s not reachable yet; retrying", address)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


# Statuses that say Temporal (or the way to it) is away or refusing everyone, not that one
# lead's request is at fault; `INVALID_ARGUMENT` (a payload over the blob limit, say) is a
# lead's own.
_OUTAGE_STATUSES = frozenset(
    {
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.NOT_FOUND,  # the namespace
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.RESOURCE_EXHAUSTED,  # rate limited
        RPCStatusCode.ABORTED,
        RPCStatusCode.UNIMPLEMENTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.UNAUTHENTICATED,
    }
)


def is_outage(error: BaseException) -> bool:
    """Whether a failed call to Temporal failed because Temporal is away (or refuses every
    caller), rather than because of what was sent."""
    if isinstance(error, RPCError):
        return error.status in _OUTAGE_STATUSES
    return isinstance(error, ConnectionError | TimeoutError)


class LeadWorkflows:
    """The Temporal side of delivery: one `LeadWorkflow` per lead, on one task queue."""

    def __init__(self, client: Client, task_queue: str, history_limit: int) -> None:
        self.client = client
        self.task_queue = task_queue
        self.history_limit = history_limit

    async def deliver(self, event: LoggedEvent) -> None:
        """Signal-with-start: starts the lead's workflow if it is not running."""
        await self.client.start_workflow(
            LeadWorkflow.run,
            LeadWorkflowInput(lead_id=event.lead_id, history_limit=self.history_limit),
            id=workflow_id_for(event.lead_id),
            task_queue=self.task_queue,
            start_signal=EVENT_SIGNAL,
            start_signal_args=[event],
            rpc_timeout=timedelta(seconds=10),
        )

    async def act_on_parked_decision(self, lead_id: str, item_id: str, action: str) -> None:
        """Tell a lead's workflow, parked on `item_id`, to `retry` or `skip` the decision.
        Raises RPCError (NOT_FOUND: the workflow is not running)."""
        handle = self.client.get_workflow_handle(workflow_id_for(lead_id))
        await handle.signal(
            QUARANTINE_SIGNAL, OperatorAction(item_id, action), rpc_timeout=timedelta(seconds=10)
        )

    async def server_reachable(self) -> bool:
        try:
            return await self.client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception:
            return False

    async def worker_polling(self) -> bool:
        """True if some worker polled the task queue recently (Temporal tracks pollers)."""
        try:
            response = await self.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.client.namespace,
                    task_queue=TaskQueue(name=self.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
                timeout=timedelta(seconds=2),
            )
        except Exception:
            return False
        return len(response.pollers) > 0


class TemporalUnavailable(Exception):
    """Temporal must be reached for this and cannot be now."""


async def act_on_quarantine_item(
    quarantine: Quarantine, workflows: LeadWorkflows | None, item_id: str, action: str
) -> QuarantineItem:
    """An operator's `retry` or `skip` of an open quarantine item: a follower's item is
    marked, and its follower acts on it within a poll; a parked decision is signalled to
    its lead's workflow, which waits for exactly that and closes the item (or parks it
    again). Returns the item as it is now. Raises QuarantineItemNotFound,
    QuarantineItemClosed, or TemporalUnavailable (a decision, with Temporal away)."""
    item = await asyncio.to_thread(quarantine.get, item_id)
    if not item.is_open:
        raise QuarantineItemClosed(f"quarantine item {item_id} is already {item.status}")
    if item.stage == DECISION:
        assert item.lead_id is not None
        if workflows is None:
            raise TemporalUnavailable("Temporal is not reachable yet; retry in a moment")
        try:
            await workflows.act_on_parked_decision(item.lead_id, item_id, action)
        except RPCError as refused:
            if refused.status == RPCStatusCode.NOT_FOUND:
                raise QuarantineItemClosed(
                    f"lead {item.lead_id}'s workflow is not running: nothing waits on {item_id}"
                ) from refused
            raise TemporalUnavailable(f"Temporal refused the signal: {refused}") from refused
        return await asyncio.to_thread(quarantine.get, item_id)
    return await asyncio.to_thread(quarantine.request, item_id, action)
