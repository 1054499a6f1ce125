"""Dashboard tests: Pilot, snapshots and the fake worker they share."""
