"""A TCP proxy a test can cut: 127.0.0.1:<port> forwarded to a target, as a database that
goes away and comes back on the same address (what a client sees when PostgreSQL stops or
restarts).

`stop()` closes the listener and every open connection at once (new connections are then
refused); `start()` listens again on the same port.

With an `ssl.SSLContext` it terminates TLS (a server that asks for client certificates,
say) and forwards the plain bytes: a secured front for a server that has no TLS itself.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from typing import cast

CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port`, one thread per connection."""

    def __init__(
        self, target_host: str, target_port: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self.target = (target_host, target_port)
        self.tls = tls
        self.refused_handshakes = 0
        self.port = 0  # chosen by the first start(), kept by the next ones
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._serving = threading.Event()

    def start(self) -> None:
        """Listen on `port` (again) and forward every connection accepted."""
        listener = socket.socket()
        # The port may hold connections in TIME_WAIT from before a stop.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        listener.listen(64)
        listener.settimeout(0.05)  # how often the accept loop looks whether to stop
        self._listener = listener
        self._serving.set()
        with self._lock:
            self._spawn(self._accept, listener)

    def stop(self) -> None:
        """Refuse new connections and cut every open one; returns once all threads ended."""
        self._serving.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
            threads, self._threads = self._threads, []
        for sock in sockets:
            _cut(sock)
        for thread in threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while self._serving.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.tls is not None:
                try:
                    client.settimeout(5)
                    client = self.tls.wrap_socket(client, server_side=True)
                except OSError:  # ssl.SSLError included: no or a wrong client certificate
                    self.refused_handshakes += 1
                    _cut(client)
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the target is down too: the client sees the connection end
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:  # stop() sees either none or all of this connection
                if not self._serving.is_set():
                    _cut(client)
                    _cut(upstream)
                    return
                self._sockets.update((client, upstream))
                self._spawn(self._pump, client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side ends or the proxy cuts them."""
        peer = {client: upstream, upstream: client}
        try:
            with selectors.DefaultSelector() as selector:
                for sock in peer:
                    selector.register(sock, selectors.EVENT_READ)
                while self._serving.is_set():
                    for key, _ in selector.select(timeout=0.05):
                        source = cast(socket.socket, key.fileobj)
                        data = source.recv(CHUNK)
                        if not data:
                            return
                        peer[source].sendall(data)
                        # TLS may hold decrypted bytes the selector cannot see.
                        while isinstance(source, ssl.SSLSocket) and source.pending():
                            peer[source].sendall(source.recv(CHUNK))
        except (OSError, ValueError):
            return  # cut by stop() (a closed socket has no file descriptor), or reset
        finally:
            with self._lock:
                self._sockets.difference_update(peer)
            for sock in peer:
                _cut(sock)

    def _spawn(self, target: Callable[..., None], *args: socket.socket) -> None:
        """Start a thread that stop() joins (the caller holds the lock)."""
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()


def _cut(sock: socket.socket) -> None:
    """End the connection at once, as a crashed server does."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
