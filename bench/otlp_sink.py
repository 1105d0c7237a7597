"""A collector for benchmarks with traces on: an OTLP/HTTP endpoint in the benchmark's
process that takes every export and keeps nothing, so what is measured is what leadflow
pays to trace (spans, batching, encoding, the POST), not a collector's work."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator


class _Discard(http.server.BaseHTTPRequestHandler):
    """Answers every export 200 after reading it, as a collector would."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def discarding_collector() -> Iterator[str]:
    """The endpoint's URL (for OTEL_EXPORTER_OTLP_ENDPOINT) while open."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
