"""Talking to Temporal: connecting, delivering lead events by signal-with-start, and the
readiness probes. Everything that holds a Temporal client lives here or in the worker."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from domain.state import LoggedEvent
from workflows.lead import EVENT_SIGNAL, LeadWorkflow, LeadWorkflowInput, workflow_id_for

log = logging.getLogger(__name__)


async def connect(address: str, namespace: str, *, wait_seconds: float | None = None) -> Client:
    """Connect; with `wait_seconds`, keep retrying that long (Temporal may still be starting)."""
    deadline = None if wait_seconds is None else asyncio.get_running_loop().time() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except Exception:
            if deadline is None or asyncio.get_running_loop().time() > deadline:
                raise
            log.info("Temporal at %s not reachable yet; retrying", address)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


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
