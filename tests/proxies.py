"""A local TCP proxy for fault tests: it forwards to a real server and can cut, or hold, what passes.

The registry under test is pointed at the proxy's port instead of the
server's; the test then breaks the network at the moment it chooses:

* :meth:`Proxy.cut` closes every connection open through the proxy (both
  ends), as a network failure or a server restart would; new connections
  are accepted and forwarded as before.
* :meth:`Proxy.hold` makes the proxy stop forwarding any client chunk that
  contains a marker (e.g. the header of an S3 server-side copy) until
  :meth:`Proxy.release`: a server that accepts the request and never
  answers. :attr:`Proxy.holding` is set as soon as one is held, so the test
  waits on an event, not on a guess of how long something takes.
* :meth:`Proxy.cut_on_reply` forwards the next client chunk containing a
  marker and cuts every connection instead of passing the server's answer
  on: the request was carried out, the client never learns it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class Proxy:
    """Forward 127.0.0.1:``port`` to ``target``; see the module docstring."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._marker: bytes | None = None
        self._cut_marker: bytes | None = None
        self._cut_armed = False
        self.holding = threading.Event()
        self._released = threading.Event()
        self.cuts = 0
        self.held = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.extend((client, server))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        tail = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not from_client and self._cut_armed:
                    self._cut_armed = False
                    self.cut()
                    break
                marker = self._marker
                if from_client and marker is not None and marker in (tail + data).lower():
                    self.held += 1
                    self.holding.set()
                    self._released.wait()
                if from_client and self._cut_marker is not None and self._cut_marker in (tail + data).lower():
                    self._cut_marker = None
                    self._cut_armed = True
                tail = data[-256:]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    end.close()

    def cut(self) -> int:
        """Close every connection open through the proxy; return how many client connections were cut."""
        with self._lock:
            ends, self._open = self._open, []
            cut = len(ends) // 2
            self.cuts += cut  # counted before any end closes, so a client that sees the cut sees it counted
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                end.close()
        return cut

    def hold(self, marker: bytes) -> None:
        """From now on, hold every client chunk containing ``marker`` (matched lowercase) until :meth:`release`."""
        self._released.clear()
        self.holding.clear()
        self._marker = marker.lower()

    def cut_on_reply(self, marker: bytes) -> None:
        """Forward the next client chunk containing ``marker`` (lowercase match), then cut instead of the answer."""
        self._cut_armed = False
        self._cut_marker = marker.lower()

    def release(self) -> None:
        """Forward what is held, and hold nothing more."""
        self._marker = None
        self._released.set()

    def close(self) -> None:
        self._closed = True
        self.release()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()


@contextlib.contextmanager
def proxy(host: str, port: int) -> Iterator[Proxy]:
    """A :class:`Proxy` to ``host:port``, closed on exit."""
    running = Proxy((host, port))
    try:
        yield running
    finally:
        running.close()
