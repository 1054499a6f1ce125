"""Run Apache Kafka's own command-line tools, from the distribution balance-tui runs its broker with.

`balance-tui kafka consumer-groups --bootstrap-server localhost:9092 --describe --group
balance-service` is the lab's `kafka-consumer-groups.sh ...`; any `kafka-TOOL.sh` works by
its name (`consumer-groups`, `kafka-topics`, `kafka-configs.sh`, ...). Kafka comes from
`--kafka-home`/KAFKA_HOME, else the cached official jars of `kafka_version` (fetched once
with Maven). `balance-tui kafka --list` names every tool. Needs Java 17 or newer.
"""

from __future__ import annotations

import argparse

from balance_tui.config import Settings
from balance_tui.kafka.brokers.distribution import (
    TOOL_CLASSES,
    locate_kafka,
    progress_printer,
    run_tool,
)

#: Runs a local Java program: the librdkafka client settings are not checked.
USES_KAFKA = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the tools and exit")
    parser.add_argument("tool", nargs="?", metavar="TOOL",
                        help="the tool: consumer-groups, topics, configs, console-consumer, ...")
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="the tool's own arguments, exactly as for kafka-TOOL.sh")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.list or not args.tool:
        print("\n".join(sorted(TOOL_CLASSES)))
        return 0 if args.list else 2
    distribution = locate_kafka(settings.kafka_version, settings.kafka_home, progress=progress_printer())
    return run_tool(distribution, args.tool, args.tool_args)
