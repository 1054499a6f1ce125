"""The headless printer: one line per event, with text from Kafka shown, never interpreted."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from balance_tui.core.rows import ConsumerStatus, TimelineEntry
from balance_tui.headless import HeadlessPrinter
from balance_tui.messages import (
    BrokerDescribed,
    Exported,
    KafkaErrorReported,
    SessionStarted,
    StatusChanged,
    TimelineEvent,
    WorkerStopped,
)

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x00\u202e\n"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\u202e\\n"


def test_every_line_shows_control_characters_as_escapes() -> None:
    out = io.StringIO()
    printer = HeadlessPrinter(f"me{HOSTILE}", out)
    messages = [
        SessionStarted(consumer_id=f"me{HOSTILE}", group=f"g{HOSTILE}", topic="t", strategy="range",
                       bootstrap_servers="localhost:9092", log_path=Path(f"/tmp/log{HOSTILE}"), work_ms=2.0),
        BrokerDescribed(label=f"Kafka{HOSTILE}", consumer_protocol=None),
        StatusChanged(ConsumerStatus.CONSUMING, f"detail{HOSTILE}"),
        KafkaErrorReported(code=f"CODE{HOSTILE}", reason=f"reason{HOSTILE}", fatal=False, hint=f"hint{HOSTILE}"),
        TimelineEvent(TimelineEntry(at=datetime(2026, 2, 8, tzinfo=UTC), kind="member_left",
                                    detail=f"peer{HOSTILE} left")),
        Exported((Path(f"/tmp/export{HOSTILE}.json"),)),
        WorkerStopped(f"fatal{HOSTILE}"),
    ]
    for message in messages:
        printer.handle(message)
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == len(messages) + 1  # SessionStarted prints the log path on a line of its own
    for char in ("\x1b", "\x07", "\x00", "\u202e"):
        assert char not in text, repr(char)
    assert all(f"[me{SHOWN}]" in line for line in lines)
    for fragment in (f"Group: g{SHOWN}", f"Session log: /tmp/log{SHOWN}", f"Broker: Kafka{SHOWN}",
                     f"(detail{SHOWN})", f"Error: CODE{SHOWN} - reason{SHOWN}. hint{SHOWN}",
                     f"member_left: peer{SHOWN} left", f"Exported: /tmp/export{SHOWN}.json",
                     f"Stopped: fatal{SHOWN}"):
        assert fragment in text, fragment
