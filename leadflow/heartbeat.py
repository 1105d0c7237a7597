"""The heartbeat `leadflow dev` watches: a file a child's event loop touches while it runs.

A process can freeze without exiting (stuck in C code holding the GIL, stopped by a
signal, deadlocked); its supervisor sees no exit code, only silence. `beat_until` runs on
the same event loop as the process's work, so the file stops changing exactly when that
loop stops turning, and the supervisor (`leadflow.dev.Supervisor`) restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

HEARTBEAT_SECONDS = 2.0


async def beat_until(path: Path, stop: asyncio.Event, every: float = HEARTBEAT_SECONDS) -> None:
    """Touch `path` every `every` seconds until `stop` is set (or the task is cancelled)."""
    while not stop.is_set():
        path.touch()  # one syscall; on the loop itself, so it stops when the loop does
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


@contextlib.asynccontextmanager
async def beating(path: Path | None) -> AsyncIterator[None]:
    """Keep a heartbeat while the context is open; nothing when `path` is None."""
    if path is None:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(beat_until(path, stop))
    try:
        yield
    finally:
        stop.set()
        await task
