"""The footer keeps its keys when a screen comes back, and rebuilds them when the keys change."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from balance_tui.ui.widgets.footer import SteadyFooter, shown_keys

from .test_app import FakeWorker, make_app, wait_until


class Covering(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield Static("on top")


class Switchable(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("a", "act", "Act"), ("c", "cover", "Cover")]
    can_act = True

    def compose(self) -> ComposeResult:
        yield SteadyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.can_act if action == "act" else True

    def action_act(self) -> None:
        pass

    def action_cover(self) -> None:
        self.push_screen(Covering())


def keys_of(app: App) -> dict[str, FooterKey]:
    return {key.key: key for key in app.screen.query(FooterKey)}


async def test_a_screen_shown_again_keeps_the_footers_keys_and_a_changed_binding_rebuilds_them() -> None:
    app = Switchable()
    async with app.run_test(size=(80, 10)) as pilot:
        await wait_until(pilot, lambda: {"a", "c"} <= set(keys_of(app)), "the footer's keys")
        before = keys_of(app)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, Covering), "the covering screen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, Covering), "back")
        await pilot.pause()
        assert keys_of(app) == before, "the same key widgets: not rebuilt"
        app.can_act = False
        app.refresh_bindings()
        await wait_until(pilot, lambda: "a" not in keys_of(app), "the key gone")  # check_action False hides it
        assert keys_of(app)["c"] is not before["c"], "rebuilt"


async def test_the_dashboards_footer_survives_the_help_screen() -> None:
    app = make_app(FakeWorker())
    async with app.run_test(size=(120, 40)) as pilot:
        footer = app.query_one(SteadyFooter)
        await wait_until(pilot, lambda: "question_mark" in keys_of(app) and footer._shown == shown_keys(app.screen),
                         "the footer's keys, as the screen has them now")
        await pilot.pause()
        before = keys_of(app)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen.id != "_default" and not keys_of(app), "help on top")
        await pilot.press("escape")
        await wait_until(pilot, lambda: keys_of(app).keys() == before.keys(), "back, with every key")
        await pilot.pause()
        assert keys_of(app) == before


class CountingFooter(SteadyFooter):
    builds = 0

    def compose(self) -> ComposeResult:
        type(self).builds += 1
        yield from super().compose()


class Counted(Switchable):
    def compose(self) -> ComposeResult:
        yield CountingFooter()


async def test_a_burst_of_binding_signals_rebuilds_the_keys_once() -> None:
    app = Counted()
    async with app.run_test(size=(80, 10)) as pilot:
        await wait_until(pilot, lambda: {"a", "c"} <= set(keys_of(app)), "the footer's keys")
        await pilot.pause()
        footer = app.query_one(CountingFooter)
        builds = CountingFooter.builds
        app.can_act = False

        def burst() -> None:  # as a screen shown again, then focused, signals before a refresh
            for _ in range(3):
                footer.bindings_changed(app.screen)

        footer.call_later(burst)  # from the footer's own context, as the screen's signal runs it
        await wait_until(pilot, lambda: "a" not in keys_of(app), "the key gone")
        await pilot.pause()
        await pilot.pause()
        assert CountingFooter.builds == builds + 1, "one rebuild for the burst"
