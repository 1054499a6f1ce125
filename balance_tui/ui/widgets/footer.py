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
        # Textual schedules a recompose per signal, and signals come in bursts (a screen shown,
        # then focused): the keys are compared when the rebuild is due, so a burst rebuilds once.
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if self.is_attached and shown_keys(self.screen) != self._shown:
            await self.recompose()
