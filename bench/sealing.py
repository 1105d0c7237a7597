"""What sealing leads' personal data costs the readers and the writers of the log: the fast
decoder (`store.decoder`, what every follower and a rebuild read through) and the mapper's
`to_stored_event` (every append), on sealed captures against the same captures stored
plain, in the same run.

Run from the repository root (no database server needed; a SQLite file in a temp dir):

    .venv/bin/python bench/sealing.py [--leads N] [--reps R]

Keys are cached (as they are after a follower's first page): what is measured is opening
and sealing, not the key lookups (one query per page of events).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import Mapper, StoredEvent

from domain.events import parse_event
from domain.lead import Lead
from store.decoder import LoggedEventDecoder
from store.log import open_event_log


def captures(leads: int) -> list[Any]:
    now = datetime.now(UTC)
    events = []
    for i in range(leads):
        body = {
            "type": "lead.captured",
            "data": {
                "email": f"lead{i}@example.com",
                "phone": f"1380013{i % 10000:04d}",
                "name": f"Lead Number {i}",
                "company": "ACME",
                "source": "website",
                "region": "east",
                "attributes": {"budget": "10k"},
            },
        }
        event = parse_event(body, now=now, phone_region="CN")
        lead = Lead.capture(uuid4(), str(uuid4()), event.occurred_at, event.data)
        events.extend(lead.collect_events())
    return events


def timed(action: Any, items: list[Any]) -> float:
    started = time.perf_counter()
    for item in items:
        action(item)
    return (time.perf_counter() - started) / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log = open_event_log(f"sqlite:///{folder}/leadflow.db")
        try:
            sealing = log.mapper
            plain: Mapper[UUID] = Mapper(transcoder=sealing.transcoder)
            events = captures(args.leads)
            sealed_stored: list[StoredEvent] = [sealing.to_stored_event(e) for e in events]
            plain_stored = [plain.to_stored_event(e) for e in events]
            sealed_decoder = log.logged_event_decoder
            plain_decoder = LoggedEventDecoder(plain)
            sealed_decoder.load_keys(sealed_stored)  # cached, as after a first page
            rows: dict[str, list[float]] = {k: [] for k in ("dp", "ds", "wp", "ws")}
            for _ in range(args.reps):  # interleaved: drift hits both alike
                rows["dp"].append(timed(plain_decoder.decode, plain_stored))
                rows["ds"].append(timed(sealed_decoder.decode, sealed_stored))
                rows["wp"].append(timed(plain.to_stored_event, events))
                rows["ws"].append(timed(sealing.to_stored_event, events))
        finally:
            log.close()
    median = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{args.leads} captures (email, phone, name, company, attributes), median of {args.reps}")
    for label, sealed, plain_key in (("decode", "ds", "dp"), ("store ", "ws", "wp")):
        print(f"{label}, plain  (baseline)  {median[plain_key]:6.1f} µs/event")
        ratio = median[sealed] / median[plain_key]
        print(f"{label}, sealed             {median[sealed]:6.1f} µs/event   {ratio:.2f}x")


if __name__ == "__main__":
    main()
