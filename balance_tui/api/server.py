"""The HTTP server: uvicorn in its own thread with its own event loop.

Neither the consumer thread nor Textual's loop ever waits on it: the worker only feeds the
store's queue, and this thread only reads the store. The socket is bound in the caller's
thread, so a port in use is a one-line error before anything else starts.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
import threading
import time
from collections import deque

import uvicorn

from balance_tui.api.app import StreamHub, create_app
from balance_tui.api.store import ApiStore
from balance_tui.errors import UserError

#: Connections served at once (streams included); more are answered 503 by uvicorn.
MAX_CONNECTIONS = 64
START_TIMEOUT_SECONDS = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: any free port); UserError in one line otherwise."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise UserError(f"cannot serve the HTTP API on {where}: unknown host ({error.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may leave TIME_WAIT behind
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        reason = {
            errno.EADDRINUSE: "the port is in use (choose another --http-port)",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "not an address of this machine",
        }.get(error.errno or 0, error.strerror or str(error))
        raise UserError(f"cannot serve the HTTP API on {where}: {reason}") from None
    sock.setblocking(False)
    return sock


class _RecentLines(logging.Handler):
    """Keeps the server's own log lines in memory: on the dashboard they would tear the screen."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.recent: deque[str] = deque(maxlen=50)

    def emit(self, record: logging.LogRecord) -> None:
        self.recent.append(self.format(record))


def _route_server_logs(quiet: bool) -> logging.Handler:
    handler: logging.Handler = _RecentLines() if quiet else logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("balance-tui http: %(levelname)s %(message)s"))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    return handler


class ApiServer:
    """Serves `store` on a bound socket until `stop`."""

    def __init__(self, store: ApiStore, sock: socket.socket, *, quiet: bool = False) -> None:
        self.store = store
        self.socket = sock
        self.hub = StreamHub(store)
        self.app = create_app(store, self.hub)
        self.log = _route_server_logs(quiet)
        config = uvicorn.Config(
            self.app, loop="asyncio", http="h11", ws="none", lifespan="off", log_config=None,
            access_log=False, server_header=False, proxy_headers=False,
            limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5, timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> ApiServer:
        self.store.start()
        self._thread = threading.Thread(target=self._serve, name="balance-tui-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise UserError(f"the HTTP API did not start: {self._failure!r}")
            if time.monotonic() > deadline:
                raise UserError(f"the HTTP API did not start within {START_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.01)
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self.hub.attach(loop)
        try:
            loop.run_until_complete(self._server.serve(sockets=[self.socket]))
        except BaseException as error:  # noqa: BLE001 - reported by start() or ends the thread
            self._failure = error
        finally:
            self.hub.detach()
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """End the streams, stop serving, and stop the store's updater (bounded)."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            def begin_shutdown() -> None:
                self.hub.detach()
                self._server.should_exit = True

            try:
                loop.call_soon_threadsafe(begin_shutdown)
            except RuntimeError:
                pass
            thread.join(timeout)
        self.socket.close()
        self.store.stop()


def start_api(host: str, port: int, store: ApiStore, *, quiet: bool) -> ApiServer:
    """Bind, then serve `store` from a new thread; UserError in one line when it cannot."""
    server = ApiServer(store, bind(host, port), quiet=quiet)
    try:
        return server.start()
    except BaseException:
        server.stop(timeout=1.0)
        raise
