"""The `?` screen: every key and what it makes happen in the group."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: Keys that are not app bindings but still matter (navigation and the filter box).
OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("Escape", "Clear the customer filter and hide it."),
    ("Enter", "In the filter box: keep the filter and go back to the table."),
    ("↑ ↓ PgUp PgDn", "Scroll the focused table (balances, partitions, timeline)."),
    ("Home End", "Jump to the first or last row."),
    ("Tab", "Move the focus to the next table (Shift+Tab: back)."),
)

#: The name an app installs its one help screen under.
HELP_SCREEN = "help"

INTRO = (
    "Each terminal running balance-tui is one member of the consumer group; these keys act on this "
    "member only, except ! @ # $ which ask the whole group. Open more terminals to watch partitions "
    "move between them."
)


def keys_table(bindings: list[Binding]) -> Table:
    """Two columns, key and meaning, from the app's visible bindings and OTHER_KEYS."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold #5fafff", no_wrap=True, justify="right")
    table.add_column()
    for binding in bindings:
        table.add_row(binding.key_display or binding.key, binding.tooltip or binding.description)
    table.add_row("", "")
    for key, meaning in OTHER_KEYS:
        table.add_row(key, Text(meaning, style="#8a8a8a"))
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; Escape, `?` or `q` closes it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        #help-dialog {
            width: 100;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: round $primary;
            border-title-color: $text-accent;
            border-title-style: bold;
            background: $surface;
            padding: 0 1;
        }
        #help-intro { color: $text-muted; margin-bottom: 1; }
        #help-keys { height: auto; }
        #help-footer { color: $text-muted; margin-top: 1; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close help", show=False),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        # Scrolls: on an 80x24 terminal the list is longer than the screen.
        with VerticalScroll(id="help-dialog") as dialog:
            dialog.border_title = "balance-tui keys"
            yield Static(INTRO, id="help-intro")
            yield Static(keys_table(self.bindings), id="help-keys")
            yield Static("Escape, ? or q closes this help; ↑ ↓ scroll it.", id="help-footer")

    def on_screen_resume(self) -> None:
        self.query_one("#help-dialog", VerticalScroll).scroll_home(animate=False)  # kept: opens at the top

    def action_close(self) -> None:
        self.dismiss(None)


def open_help(app: App, bindings: list[Binding]) -> None:
    """Show the app's help screen, built at the first call and kept (`install_screen`) after.

    Composing, mounting and styling it anew took most of a key's answer under load
    (docs/performance.md).
    """
    if isinstance(app.screen, HelpScreen):
        return
    if not app.is_screen_installed(HELP_SCREEN):
        app.install_screen(HelpScreen(bindings), HELP_SCREEN)
    app.push_screen(HELP_SCREEN)
