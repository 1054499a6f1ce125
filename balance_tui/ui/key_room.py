"""Room for a key: the worker holds back from the moment a key is read until the screen answers it.

The worker thread shares the interpreter with the UI. A key reaches the app's queue through the
event loop, and waits there behind frames and slices of batches while the worker keeps half the
interpreter; so the app asks for room as early as it can: in the terminal driver's reader thread,
as the key is read (`with_key_room`), and again when a key is posted (`KeyRoomApp.post_message`,
the way tests and the benchmark press keys). The room is given back once the key's answer is drawn:
after its action's next refresh (a screen it pushed is the one refreshed), or, typed into an input,
after the next refresh. Measured in docs/performance.md ("2026-12-02, evening").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from textual import events
from textual.actions import ActionParseResult
from textual.app import App
from textual.dom import DOMNode
from textual.driver import Driver
from textual.message import Message
from textual.widgets import Input

#: Longest the worker holds back for one key, however long its answer takes.
KEY_ROOM_SECONDS = 0.2

ReturnType = TypeVar("ReturnType")


def with_key_room(driver_class: type[Driver]) -> type[Driver]:
    """`driver_class`, whose reader thread calls the app's `key_read()` for each key before posting it."""

    class KeyRoomDriver(driver_class):  # type: ignore[valid-type,misc]
        def process_message(self, message: Message) -> None:
            if isinstance(message, events.Key) and hasattr(self._app, "key_read"):
                self._app.key_read()
            super().process_message(message)

    KeyRoomDriver.__name__ = KeyRoomDriver.__qualname__ = f"KeyRoom{driver_class.__name__}"
    return KeyRoomDriver


class KeyRoomApp(App[ReturnType]):
    """An App whose keys go before the work that competes with them for the interpreter (`make_room`)."""

    def make_room(self, seconds: float) -> None:
        """Hold back the competing work for up to `seconds`; 0 lets it go on. Called from any thread."""

    def get_driver_class(self) -> type[Driver]:
        return with_key_room(super().get_driver_class())

    def key_read(self) -> None:
        """A key was read and will be answered soon (from the driver's thread or the app's)."""
        self.make_room(KEY_ROOM_SECONDS)

    def post_message(self, message: Message) -> bool:
        if isinstance(message, events.Key):
            self.key_read()  # the work holds back while the key waits its turn in the queue
        return super().post_message(message)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.key_read()
            if isinstance(self.focused, Input):  # typed into an input: answered without an action
                self.call_after_refresh(self.make_room, 0)
        await super().on_event(event)

    async def run_action(self, action: str | ActionParseResult, default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        try:
            return await super().run_action(action, default_namespace, namespaces)
        finally:
            self.call_after_refresh(self.make_room, 0)  # once what the action shows is drawn
