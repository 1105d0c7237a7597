"""A collector for benchmarks with traces on: an OTLP/HTTP endpoint in the benchmark's
process that takes every export and keeps nothing, so what is measured is what leadflow
pays to trace (spans, batching, encoding, the POST), not a collector's work. It counts
what it was sent, so a run shows that its processes did export."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Received:
    """The endpoint's URL (for OTEL_EXPORTER_OTLP_ENDPOINT) and what reached it so far."""

    url: str = ""
    exports: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __str__(self) -> str:
        return f"{self.exports:,} exports, {self.bytes / 2**20:,.1f} MiB of spans"


@contextlib.contextmanager
def discarding_collector() -> Iterator[Received]:
    """A collector running while open."""
    received = Received()

    class Discard(http.server.BaseHTTPRequestHandler):
        """Answers every export 200 after reading it, as a collector would."""

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            self.rfile.read(size)
            with received.lock:
                received.exports += 1
                received.bytes += size
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discard)
    received.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
