"""The top bar: who this terminal is in the group and what its consumer is doing.

Every value shown comes from configuration, the broker or the worker: each passes through
`visible` on its way to the screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from balance_tui.core.lag import AlertState, LagStatus
from balance_tui.core.lag_view import LagView, alert_text, seconds_text
from balance_tui.core.rows import ConsumerStatus
from balance_tui.core.safe_text import visible
from balance_tui.ui import format as fmt
from balance_tui.ui.widgets.lag_chart import STATUS_STYLES as LAG_STATUS_STYLES

#: Badge style per status: green means work is flowing, yellow a rebalance in progress,
#: red that the operator should look, dim that nothing will happen by itself.
STATUS_STYLES: dict[ConsumerStatus, str] = {
    ConsumerStatus.CONNECTING: "bold black on #5f87af",
    ConsumerStatus.JOINING: "bold black on #d7af00",
    ConsumerStatus.CONSUMING: "bold black on #5faf5f",
    ConsumerStatus.REBALANCING: "bold black on #d7af00",
    ConsumerStatus.IDLE: "bold black on #87afd7",
    ConsumerStatus.PAUSED: "bold black on #af87d7",
    ConsumerStatus.PARTITIONS_LOST: "bold white on #d75f5f",
    ConsumerStatus.BROKER_UNREACHABLE: "bold white on #d75f5f",
    ConsumerStatus.FATAL_ERROR: "bold white on #af0000",
    ConsumerStatus.STOPPED: "bold white on #585858",
}
LEAVING_STYLE = "bold black on #d7af00"
ALERT_STYLE = "bold white on #d75f5f"
LABEL = "#8a8a8a"
VALUE = "bold"


@dataclass
class HeaderInfo:
    """Everything the header shows; the app fills it from messages."""

    consumer_id: str = "balance-worker-…"
    group: str = ""
    topic: str = ""
    strategy: str = ""
    bootstrap_servers: str = ""
    #: "Apache Kafka 4.4.0", "Tansu 0.6.0", ...: what the broker is, where it tells.
    broker_label: str = ""
    log_path: Path | None = None
    member_id: str | None = None
    generation: int | None = None
    work_ms: float = 0.0
    status: ConsumerStatus = ConsumerStatus.CONNECTING
    status_detail: str = ""
    status_since: datetime | None = None
    started_at: datetime | None = None
    leaving: bool = False
    #: My partitions' worst Burrow status (OK, WARN, ...), lag in seconds, and the alert's words.
    lag_status: LagStatus | None = None
    lag_seconds: str = ""
    alert: str = ""
    alert_firing: bool = False


def status_text(info: HeaderInfo, now: datetime) -> Text:
    """The coloured status badge; Joining counts the seconds spent waiting for the group."""
    if info.leaving:
        return Text(" ◌ LEAVING GROUP… ", style=LEAVING_STYLE)
    label = info.status.value.upper()
    if info.status is ConsumerStatus.JOINING and info.status_since is not None:
        label += f" {int((now - info.status_since).total_seconds())}s"
    return Text(f" ● {label} ", style=STATUS_STYLES.get(info.status, "reverse"))


def _field(label: str, value: str, value_style: str = VALUE) -> Text:
    return Text.assemble((label + " ", LABEL), (visible(value) or fmt.DASH, value_style))


def _fields(*parts: Text) -> Text:
    return Text("   ").join(parts)


class HeaderBar(Widget):
    """Consumer id, group, topic, strategy, status, generation, broker, uptime and log path."""

    DEFAULT_CSS = """
    HeaderBar {
        height: 3;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info = HeaderInfo()
        self._now: datetime | None = None
        self._shown: tuple[object, ...] = ()

    def show(self, now: datetime) -> None:
        """Re-render only when something visible changed (the uptime ticks once a second)."""
        self._now = now
        key = (*vars(self.info).values(), self._elapsed_seconds(now), self.size.width)
        if key != self._shown:
            self._shown = key
            self.refresh()

    def _elapsed_seconds(self, now: datetime) -> int:
        started = self.info.started_at
        return int((now - started).total_seconds()) if started else 0

    def render(self) -> Group:
        info, now = self.info, self._now or datetime.now()
        status_line = Text.assemble(
            status_text(info, now),
            "  ",
            (visible(info.consumer_id), "bold #5fafff"),
            ("  " + _shown_detail(info) if _shown_detail(info) else "",
             "bold #ff8787" if info.status is ConsumerStatus.JOINING else LABEL),
        )
        uptime = _field("up", fmt.duration(now - info.started_at) if info.started_at else fmt.DASH)
        if info.alert:
            # The lab's rule: the first thing to see, beside the uptime that says since when we run.
            alert = (Text(f" ⚠ LAG ALERT {info.alert.removeprefix('in alert ')} ", style=ALERT_STYLE)
                     if info.alert_firing else Text(info.alert, style="#d7af00"))
            uptime = Text.assemble(alert, "   ", uptime)
        rebalance_line = _fields(
            _field("strategy", info.strategy, "bold #d7af5f"),
            # KIP-848 has no group generations: each member has an epoch of its own.
            _field("epoch" if info.strategy == "consumer" else "generation",
                   str(info.generation) if info.generation is not None else fmt.DASH),
            _field("member", _short_member(info.member_id), ""),
        )
        work = _field("work", fmt.work_ms(info.work_ms) + "/tx")
        if info.lag_status is not None:
            lag = Text.assemble(("lag ", LABEL), (info.lag_status.name,
                                                  "bold " + LAG_STATUS_STYLES[info.lag_status].removeprefix("bold ")),
                                (f" · {info.lag_seconds} behind" if info.lag_seconds else "", VALUE))
            work = Text.assemble(lag, "   ", work)
        where_line = _fields(
            _field("group", info.group),
            _field("topic", info.topic),
            _field("broker", info.bootstrap_servers + (f" ({info.broker_label})" if info.broker_label else "")),
        )
        # The log path gets what is left of the line, losing its directories first.
        room = self.content_size.width - where_line.cell_len - len("   log ")
        if room >= 12:
            log = fmt.ellipsize_left(visible(fmt.short_path(info.log_path)), room)
            where_line = _fields(where_line, _field("log", log, ""))
        where_line.no_wrap = True
        where_line.overflow = "ellipsis"
        return Group(_split_line(status_line, uptime), _split_line(rebalance_line, work), where_line)


def show_lag_in_header(info: HeaderInfo, view: LagView | None) -> None:
    """The Snapshot's lag view in the header's words: status, seconds, and the alert unless it is quiet."""
    if view is None:
        return
    info.lag_status = view.status
    info.lag_seconds = seconds_text(view.lag_seconds) if view.lag_seconds is not None else ""
    alert = view.alert
    info.alert_firing = alert is not None and alert.firing
    info.alert = alert_text(alert, view.time) if alert is not None and alert.state is not AlertState.OK else ""


def _split_line(left: Text, right: Text) -> Table:
    """One line: `left` gets what `right` leaves, and is cut with an ellipsis if it must."""
    grid = Table.grid(expand=True, padding=(0, 2))
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(left, right)
    return grid


def _shown_detail(info: HeaderInfo) -> str:
    if not info.status_detail or info.leaving:
        return ""
    if info.status is ConsumerStatus.JOINING:
        # Joining counts its own seconds live (a detail repeating them would go stale); what
        # follows them is why the group keeps refusing this member.
        return visible(info.status_detail.partition(" · ")[2])
    return visible(info.status_detail)


def _short_member(member_id: str | None) -> str:
    """Member ids are `<client.id>-<uuid>`; the client id is shown already, the uuid's tail tells joins apart."""
    return fmt.ellipsize_left(visible(member_id), 13) if member_id else fmt.DASH
