"""Fixtures for tests that run real group members (headless balance-tui processes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.brokers.distribution import KafkaUnavailable, locate_kafka
from tests.conftest import ENGINES
from tests.integration.members import Cluster


@pytest.fixture
def cluster(broker, unique, tmp_path, client_config) -> Iterator[Callable[..., Cluster]]:
    """`cluster(strategy)`: a fresh 6-partition topic and group; every member is stopped afterwards."""
    made: list[Cluster] = []

    def make(strategy: str = "range") -> Cluster:
        topic = unique("tx")
        ensure_topic(client_config, topic, 6)
        made.append(Cluster(broker.bootstrap, topic, unique("grp"), tmp_path, strategy=strategy))
        return made[-1]

    yield make
    for each in made:
        each.stop_all()


@pytest.fixture
def kafka_cluster(kafka_broker, unique, tmp_path) -> Iterator[Callable[..., Cluster]]:
    """Like `cluster`, on the session's Apache Kafka only (for what only Kafka shows)."""
    made: list[Cluster] = []
    config = {"bootstrap.servers": kafka_broker.bootstrap}

    def make(strategy: str = "range", extra_flags: list[str] | None = None) -> Cluster:
        topic = unique("tx")
        ensure_topic(config, topic, 6)
        made.append(Cluster(kafka_broker.bootstrap, topic, unique("grp"), tmp_path, strategy=strategy,
                            extra_flags=extra_flags))
        return made[-1]

    yield make
    for each in made:
        each.stop_all()


@pytest.fixture(params=[engine for engine in ENGINES if engine != "external"] or ["tansu"])
def engine(request: pytest.FixtureRequest, session_brokers: object) -> str:
    """Each engine of the session; skipped where Apache Kafka cannot run."""
    if request.param == "kafka":
        unavailable = getattr(session_brokers, "unavailable", {}).get("kafka")
        try:
            locate_kafka(resolve=False)
        except KafkaUnavailable as error:
            pytest.skip(f"Apache Kafka tests skipped: {unavailable or error}")
    return str(request.param)
