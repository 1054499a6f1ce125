"""Sliding-window rate and latency percentiles."""

from balance_tui.core.metrics import LatencyWindow, RateMeter


def test_rate_over_window():
    meter = RateMeter(window=5.0)
    for second in range(10):
        meter.add(100, now=float(second))
    assert meter.rate(now=9.5) == 100.0  # 500 events in the last 5 s (t=5..9)


def test_rate_drops_to_zero_when_nothing_arrives():
    meter = RateMeter(window=5.0)
    meter.add(1000, now=0.0)
    assert meter.rate(now=10.0) == 0.0


def test_history_has_one_value_per_second():
    meter = RateMeter()
    meter.add(10, now=0.0)
    meter.add(20, now=1.2)
    meter.add(30, now=2.4)
    assert meter.history(now=3.0) == (10.0, 20.0, 30.0)


def test_latency_percentiles():
    window = LatencyWindow()
    assert window.percentiles(now=0.0) == (None, None)
    window.extend([float(v) for v in range(1, 101)], now=0.0)
    p50, p99 = window.percentiles(now=1.0)
    assert p50 in (50.0, 51.0)
    assert p99 in (99.0, 100.0)


def test_latency_forgets_old_samples():
    window = LatencyWindow(window=10.0)
    window.extend([5000.0] * 100, now=0.0)  # a start-up backlog
    window.extend([20.0] * 10, now=11.0)
    assert window.percentiles(now=11.5) == (20.0, 20.0)


def test_latency_percentiles_of_a_full_window_come_from_a_bounded_sample_of_every_batch(monkeypatch):
    import random

    from balance_tui.core import metrics

    rng = random.Random(3)
    window = LatencyWindow(capacity=50_000)
    slow = [rng.uniform(100.0, 200.0) for _ in range(1_000)]  # 2% of the samples, all slow
    for at in range(49):
        window.extend([rng.uniform(1.0, 10.0) for _ in range(1_000)], now=at * 0.1)
    window.extend(slow, now=4.9)
    sorted_samples: list[int] = []
    real_sorted = sorted

    def counting_sorted(values, **kwargs):
        result = real_sorted(values, **kwargs)
        sorted_samples.append(len(result))
        return result

    monkeypatch.setattr(metrics, "sorted", counting_sorted, raising=False)
    p50, p99 = window.percentiles(now=5.0)
    assert sorted_samples and sorted_samples[0] <= 2 * metrics.PERCENTILE_SAMPLE  # not all 50,000
    assert p50 is not None and 1.0 <= p50 <= 10.0
    assert p99 is not None and 100.0 <= p99 <= 200.0  # the slow batch is still seen
