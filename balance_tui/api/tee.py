"""The sink that gives every worker message to the screen (or headless printer) and to the API store."""

from __future__ import annotations

from typing import Any

from balance_tui.api.store import ApiStore
from balance_tui.control import MessageSink


def tee(primary: MessageSink, store: ApiStore) -> MessageSink:
    """A sink posting to the store first (a queue put: never waits), then to `primary`."""

    def sink(message: Any) -> object:
        store.feed(message)
        return primary(message)

    return sink


class TeeWorker:
    """A `WorkerControl` whose messages also reach an `ApiStore`; everything else goes to the worker.

    The dashboard and the headless runner take it in place of the worker and never know:
    they call `start(sink)` with their own sink, as always.
    """

    def __init__(self, worker: Any, store: ApiStore) -> None:
        self._worker = worker
        self.store = store

    def start(self, sink: MessageSink) -> None:
        self._worker.start(tee(sink, self.store))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._worker, name)
