"""Recompute every balance from the source topic and check the changelog (or dashboard exports).

Reads the whole topic without a consumer group (nothing is committed), replays it with
the consumer's own rules, partition by partition, and compares the result with the
latest state per customer in the group's changelog, or with `--exports FILE...` (their
union must hold each customer and currency exactly once). Consumers may still be
running: each partition is compared only up to where the changelog (or export) says it
got, and what lies beyond is reported as "not yet applied".

Exit codes: 0 everything matches, 1 a difference was found, 2 bad flags, 3 no broker
answers, 4 nothing could be verified (missing topic, unreadable export, stalled read).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from balance_tui.config import Settings
from balance_tui.core.changelog import PartitionRestore
from balance_tui.core.verify import (
    ExportView,
    SourceRecord,
    VerifyReport,
    export_view,
    format_report,
    verify_changelog,
    verify_exports,
)
from balance_tui.errors import BrokerUnreachable, UserError
from balance_tui.kafka.admin import topic_partition_count, wait_for_broker
from balance_tui.kafka.reader import read_partitions


class CannotVerify(UserError):
    """The check could not run at all: distinct from "ran and found differences" (1)."""

    exit_code = 4


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exports", nargs="+", type=Path, default=None, metavar="FILE",
                        help="check these dashboard exports (*.export.json) instead of the changelog")
    parser.add_argument("--require-caught-up", action="store_true",
                        help="also fail when source transactions lie beyond what was applied")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--timeout", type=_positive_seconds, default=30.0, metavar="S",
                        help="give up when reading a topic makes no progress for S seconds (default 30)")
    parser.add_argument("--connect-timeout", type=_positive_seconds, default=10.0, metavar="S",
                        help="give up if no broker answers within S seconds (default 10)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Exports are checked before the broker is contacted: a typo in a path fails at once.
    exports = [_load_export(path) for path in args.exports] if args.exports else None
    if exports is not None:
        _check_export_topics(exports, settings.topic)
    config = settings.client_config()
    wait_for_broker(config, args.connect_timeout)
    try:
        if exports is not None:
            _require_topic(config, settings.topic, "source")
            report = verify_exports(_source(config, settings.topic, args.timeout), exports,
                                    require_caught_up=args.require_caught_up)
            heading = f"balance-tui verify: {len(exports)} export(s) against `{settings.topic}`"
        else:
            # `<group>.balances-changelog` unless the `changelog_topic` setting names another: the worker's.
            changelog_name = settings.changelog_topic_name
            _require_topic(config, settings.topic, "source")
            _require_topic(config, changelog_name, "changelog")
            # The changelog first, the source second: the source then holds at least every
            # record the changelog refers to, even while producers and consumers keep going.
            restores = _read_changelog(config, changelog_name, args.timeout)
            report = verify_changelog(_source(config, settings.topic, args.timeout), restores,
                                      require_caught_up=args.require_caught_up)
            heading = f"balance-tui verify: changelog `{changelog_name}` against `{settings.topic}`"
    except BrokerUnreachable:
        raise
    except UserError as error:
        raise CannotVerify(str(error)) from None
    _print(report, heading, settings, args)
    return 0 if report.ok else 1


def _print(report: VerifyReport, heading: str, settings: Settings, args: argparse.Namespace) -> None:
    if args.json:
        document = {"topic": settings.topic, **report.to_json()}
        if args.exports:
            document["exports"] = [str(path) for path in args.exports]
        else:
            document["changelogTopic"] = settings.changelog_topic_name
        print(json.dumps(document, indent=2))
    else:
        print(format_report(report, heading), end="")


def _require_topic(config: dict[str, str], topic: str, role: str) -> None:
    if topic_partition_count(config, topic) is None:
        hint = " (is the worker running with --changelog on, and is --group right?)" if role == "changelog" else ""
        raise CannotVerify(f"{role} topic {topic!r} does not exist at {config.get('bootstrap.servers')}{hint}")


def _source(config: dict[str, str], topic: str, timeout: float) -> Iterator[SourceRecord]:
    for partition, offset, _key, value in read_partitions(config, topic, timeout):
        yield partition, offset, value


def _read_changelog(config: dict[str, str], topic: str, timeout: float) -> dict[int, PartitionRestore]:
    partitions = topic_partition_count(config, topic) or 0
    # Every partition is present, empty ones too: "no record" is evidence verify uses.
    restores = {partition: PartitionRestore(partition) for partition in range(partitions)}
    for partition, _offset, _key, value in read_partitions(config, topic, timeout):
        restore = restores.get(partition)
        if restore is None:  # partitions added while reading
            restore = restores[partition] = PartitionRestore(partition)
        restore.add(value)
    return restores


def _load_export(path: Path) -> ExportView:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CannotVerify(f"cannot read export {path}: {error.strerror or error}") from None
    try:
        # Decimal, not float: a balance must be compared exactly, whatever its spelling.
        document = json.loads(text, parse_float=Decimal)
    except ValueError as error:
        raise CannotVerify(f"export {path} is not JSON: {error}") from None
    try:
        return export_view(str(path), document)
    except ValueError as error:
        raise CannotVerify(str(error)) from None


def _check_export_topics(exports: list[ExportView], topic: str) -> None:
    for export in exports:
        if export.topic is not None and export.topic != topic:
            raise CannotVerify(f"export {export.name} is of topic {export.topic!r}, not {topic!r} "
                               f"(use --topic {export.topic})")
