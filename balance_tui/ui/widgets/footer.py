"""The key bar at the bottom: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

Shown = tuple[tuple[str, str, str, bool, str], ...]


def shown_keys(screen: Screen) -> Shown:
    """What a footer on `screen` shows: each visible binding's key, label, action, state and tooltip."""
    return tuple((binding.key, binding.description, binding.action, enabled, tooltip)
                 for _node, binding, enabled, tooltip in screen.active_bindings.values() if binding.show)


class SteadyFooter(Footer):
    """A Footer that keeps its keys when the bindings signal brings nothing new.

    Textual's Footer recomposes on every bindings signal, which a screen sends whenever it is
    shown again: closing the help screen rebuilt and restyled all the footer's keys, most of what
    a `?` still cost once the help screen was kept (46 ms → 7.4 ms with no load,
    docs/performance.md). The keys shown are the same, so they are kept.
    """

    _shown: Shown | None = None

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = shown_keys(self.screen)
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if self._shown is not None and screen is self.screen and shown_keys(screen) == self._shown:
            return
        super().bindings_changed(screen)
