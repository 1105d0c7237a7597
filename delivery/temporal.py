"""Talking to Temporal: connecting, delivering lead events by signal-with-start, telling
an outage from a refusal, the readiness probes and an operator's word to a parked lead.
Everything that holds a Temporal client lives here or in the worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from delivery.converter import LEAD_DATA_CONVERTER
from domain.personal import without_personal_data
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


async def connect(
    address: str,
    namespace: str,
    *,
    wait_seconds: float | None = None,
    data_converter: DataConverter = LEAD_DATA_CONVERTER,
    runtime: Runtime | None = None,
    tls: TLSConfig | bool = False,
    api_key: str | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connect; with `wait_seconds`, keep retrying that long (Temporal may still be starting).
    `runtime`: the SDK's (its telemetry, e.g. the worker's metrics); default: the SDK's own.
    `tls` and `api_key`: a secured cluster (mTLS, Temporal Cloud). `interceptors`: the
    client's and its workers' (traces)."""
    deadline = None if wait_seconds is None else asyncio.get_running_loop().time() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await Client.connect(
                address,
                namespace=namespace,
                data_converter=data_converter,
                runtime=runtime,
                tls=tls,
                api_key=api_key,
                interceptors=interceptors,
            )
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

    def __init__(
        self, client: Client, task_queue: str, history_limit: int, tracer: Tracer | None = None
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.history_limit = history_limit
        self.tracer = tracer

    async def deliver(self, event: LoggedEvent) -> None:
        """Signal-with-start: starts the lead's workflow if it is not running. With a
        tracer, a span continuing the trace the event was appended in (its `traceparent`);
        the client's interceptor carries it on to the workflow."""
        if self.tracer is None:
            await self._signal_with_start(event)
            return
        appended_in = (
            None
            if event.traceparent is None
            else propagate.extract({"traceparent": event.traceparent})
        )
        with self.tracer.start_as_current_span(
            f"deliver {event.type}",
            context=appended_in,
            kind=SpanKind.PRODUCER,
            attributes={
                "leadflow.lead_id": event.lead_id,
                "leadflow.event_id": event.event_id,
                "leadflow.sequence": event.sequence,
            },
        ):
            await self._signal_with_start(event)

    async def _signal_with_start(self, event: LoggedEvent) -> None:
        await self.client.start_workflow(
            LeadWorkflow.run,
            LeadWorkflowInput(lead_id=event.lead_id, history_limit=self.history_limit),
            id=workflow_id_for(event.lead_id),
            task_queue=self.task_queue,
            start_signal=EVENT_SIGNAL,
            # Temporal keeps what it is sent: nothing that an erasure could not reach.
            start_signal_args=[without_personal_data(event)],
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
