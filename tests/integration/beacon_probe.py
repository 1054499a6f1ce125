"""A MemberBeacon alone in its own process, asking DescribeGroups as often as it may, for the outage test.

`python -m tests.integration.beacon_probe <bootstrap> <group> <topic>` prints one JSON line
whenever its counters change, and runs until it is killed (or until librdkafka aborts it).
"""

from __future__ import annotations

import json
import sys
import time

from balance_tui.config import Settings
from balance_tui.kafka.members import MemberBeacon


def main(bootstrap: str, group: str, topic: str) -> None:
    beacon = MemberBeacon(Settings(bootstrap_servers=bootstrap, group=group, topic=topic), "probe")
    last: dict[str, int] = {}
    while True:
        beacon.refresh_broker_members(ask=True)
        beacon.describe_soon(0.1)  # ask again as soon as the answer is in
        counters = {"answers": beacon.describe_answers, "abandoned": beacon.describes_abandoned}
        if counters != last:
            print(json.dumps(counters), flush=True)
            last = counters
        time.sleep(0.05)  # a poll interval, not a synchronisation


if __name__ == "__main__":
    main(*sys.argv[1:4])
