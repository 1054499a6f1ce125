"""`balance-tui report` on logs written a moment ago by real members, one of them SIGKILLed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from balance_tui.kafka.admin import ensure_topic
from tests.integration.members import Cluster

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "balance_tui", "report", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.fixture
def cluster(broker, unique, tmp_path, client_config):
    topic = unique("tx")
    ensure_topic(client_config, topic, 6)
    made = Cluster(broker.bootstrap, topic, unique("grp"), tmp_path, strategy="range")
    producer = subprocess.Popen(
        [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", broker.bootstrap,
         "--topic", topic, "--rate", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    yield made
    made.stop_all()
    producer.send_signal(signal.SIGTERM)
    producer.wait(timeout=30)


def test_report_tells_the_crash_of_a_killed_member(cluster):
    members = [cluster.start() for _ in range(3)]
    cluster.wait_for_assignments([2, 2, 2])
    victim = members[1]
    victim.kill()
    cluster.wait_for_assignments([3, 3])
    logs = [str(m.log_path) for m in members]

    # The survivors are still running and still writing: the report must not take them for crashes.
    result = run_report(*logs, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    ends = {m["name"]: m["end"] for m in document["members"]}
    victim_name = f"balance-worker-test-{victim.name}"
    assert ends[victim_name] == "crashed"
    assert sorted(end for name, end in ends.items() if name != victim_name) == ["running", "running"]
    crashes = [r for r in document["rebalances"] if "crash" in r["trigger"]]
    assert len(crashes) == 1, [r["trigger"] for r in document["rebalances"]]
    crash = crashes[0]
    assert [c["member"] for c in crash["crashes"]] == [victim_name]
    assert crash["crashes"][0]["detect_ms"] > 0
    assert crash["settled_at"] is not None and len(crash["members_after"]) == 2
    assert victim_name not in crash["members_after"]

    markdown = run_report(*logs)
    assert markdown.returncode == 0, markdown.stderr
    alias = next(m["alias"] for m in document["members"] if m["name"] == victim_name)
    assert f"| {alias} | {victim_name} |" in markdown.stdout
    assert f"crash {alias}" in markdown.stdout
    assert "```mermaid\nsequenceDiagram" in markdown.stdout
    assert f"Note over {alias}: 💥 CRASH {alias}" in markdown.stdout
