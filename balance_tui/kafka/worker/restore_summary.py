"""Provides one `restored` timeline line per assignment instead of one per partition.

The session log keeps a `restored` line per partition (other tools read them); the timeline says
"restored P0-P5: 52 customers from 9,874 records in 0.10 s" once the assignment's restores are
done, with each partition's figures in the entry's `restores` (the exports and the API show them).
"""

from __future__ import annotations

from collections.abc import Iterable

from balance_tui.core.rows import PartitionRestore


def partition_runs(partitions: Iterable[int]) -> str:
    """`P0-P5`, `P0-P2,P4`: sorted, consecutive runs folded."""
    ordered = sorted(set(partitions))
    runs: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[index], ordered[end]
        runs.append(f"P{first}" if first == last else f"P{first}-P{last}")
        index = end + 1
    return ",".join(runs)


def restored_text(restores: Iterable[PartitionRestore]) -> str:
    """The timeline's line for restores done together. They run side by side, so the longest is how long it took."""
    done = sorted(restores, key=lambda restore: restore.partition)
    customers = sum(restore.customers for restore in done)
    records = sum(restore.records for restore in done)
    seconds = max((restore.duration_ms for restore in done), default=0.0) / 1000
    text = (f"restored {partition_runs(r.partition for r in done)}: {customers:,} customer{'s' * (customers != 1)} "
            f"from {records:,} record{'s' * (records != 1)} in {seconds:.2f} s")
    if len(done) == 1:
        text += f", resuming at offset {done[0].resume_offset:,}"
    return text


class RestoreSummary:
    """Restores finished since the last line was said."""

    def __init__(self) -> None:
        self._done: dict[int, PartitionRestore] = {}

    def add(self, restore: PartitionRestore) -> None:
        self._done[restore.partition] = restore

    def take(self) -> tuple[str, tuple[int, ...], tuple[PartitionRestore, ...]] | None:
        """The line, its partitions and their figures; None when nothing finished since the last one."""
        if not self._done:
            return None
        restores = tuple(restore for _, restore in sorted(self._done.items()))
        self._done.clear()
        return restored_text(restores), tuple(r.partition for r in restores), restores
