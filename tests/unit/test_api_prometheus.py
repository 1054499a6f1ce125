"""`/metrics` in Prometheus text format, read back with Prometheus parsers."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from balance_tui.api.prometheus import build_registry, exposition
from balance_tui.core.rows import ConsumerStatus
from tests.api_messages import CONSUMER, assigned, group, revoked, snapshot, started, status
from tests.unit.test_api_store import make_store

MEMBER = {"group": "balance-service", "topic": "banking.transactions", "consumer_id": CONSUMER}


def scraped(accept: str = "") -> tuple[str, str]:
    store = make_store()
    store.apply(started())
    store.apply(assigned((0, 1, 2), join_ms=2500.0))
    store.apply(revoked((2,), (0, 1)))
    store.apply(assigned((2,), (0, 1, 2), join_ms=300.0, downtime_ms={2: 300.0}))
    store.apply(status(ConsumerStatus.CONSUMING))
    store.apply(snapshot({0: 10, 1: 20, 2: 30}, consumed=60, applied=55, skipped=2, rejected=3,
                         latency_p50_ms=8.0, latency_p99_ms=40.0))
    store.apply(snapshot({0: 12, 1: 20, 2: 31}, consumed=63, applied=58, skipped=2, rejected=3,
                         rejected_by_reason={"invalid JSON": 3}, consumed_by_partition={0: 12, 1: 20, 2: 31},
                         applied_by_partition={0: 10, 1: 18, 2: 30}, latency_p50_ms=8.0, latency_p99_ms=40.0))
    store.apply(group((CONSUMER, (0, 1, 2), "Consuming"), ("other", (3, 4, 5), "Consuming")))
    body, content_type = exposition(build_registry(store), accept)
    return body.decode(), content_type


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parse_text(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted({**MEMBER, **labels}.items())))]


def test_the_text_format_parses_and_names_follow_the_conventions() -> None:
    text, content_type = scraped()
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in parse_text(text)}
    ours = {name: family for name, family in families.items() if name.startswith("balance_tui_")}
    assert {"balance_tui_messages_consumed", "balance_tui_rebalance_duration_seconds",
            "balance_tui_partition_lag_messages", "balance_tui_consumer_status"} <= set(ours)
    for name, family in ours.items():
        assert family.documentation, name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
        for sample in family.samples:
            assert {"group", "topic", "consumer_id"} <= set(sample.labels), sample


def test_the_figures_are_the_members() -> None:
    found = samples(scraped()[0])
    assert value(found, "balance_tui_messages_consumed_total") == 63
    assert value(found, "balance_tui_transactions_applied_total") == 58
    assert value(found, "balance_tui_messages_rejected_total", reason="invalid JSON") == 3
    assert value(found, "balance_tui_rebalance_events_total", kind="revoked") == 1
    assert value(found, "balance_tui_rebalance_duration_seconds_count") == 2
    assert value(found, "balance_tui_rebalance_duration_seconds_bucket", le="0.5") == 1
    assert value(found, "balance_tui_partition_pause_duration_seconds_sum") == 0.3
    assert value(found, "balance_tui_partition_lag_messages", partition="0") == 88
    assert value(found, "balance_tui_partition_position", partition="2") == 31
    assert value(found, "balance_tui_partition_high_watermark", partition="1") == 100
    assert value(found, "balance_tui_partition_messages_consumed_total", partition="0") == 12
    assert value(found, "balance_tui_partition_transactions_applied_total", partition="1") == 18
    assert value(found, "balance_tui_assigned_partitions") == 3
    assert value(found, "balance_tui_group_members") == 2
    assert value(found, "balance_tui_group_state", state="stable") == 1
    assert value(found, "balance_tui_consumer_status", status="Consuming") == 1
    assert value(found, "balance_tui_consumer_status", status="Paused") == 0
    assert value(found, "balance_tui_end_to_end_latency_seconds", quantile="0.99") == 0.04


def test_openmetrics_is_served_when_the_scraper_asks_for_it() -> None:
    text, content_type = scraped("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    names = {family.name for family in parse_openmetrics(text)}
    assert "balance_tui_messages_consumed" in names and text.endswith("# EOF\n")
