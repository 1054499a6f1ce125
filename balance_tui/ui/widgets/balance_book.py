"""The balance table's data: every row, a sorted index over them, and which rows changed lately.

Sized for a million customers: taking in a batch costs a few dictionary operations per row,
a new key moves one block of the index (not the whole list), and a filter reads each block's
digest (its search texts joined) before its texts. Measurements in docs/performance.md ("The dashboard at bank scale").
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import accumulate, chain, compress, islice, repeat
from operator import contains, not_
from typing import Any, overload

from balance_tui.core.rows import BalanceRow
from balance_tui.core.safe_text import visible

#: How long a changed row stays highlighted.
HIGHLIGHT_SECONDS = 1.5
#: Keys per block of a `SortedIndex`; a block splits at twice this. Inserting moves at most one
#: block (~16 kB), and finding item i bisects over n / BLOCK block starts.
BLOCK = 1024
#: A revoke is done in steps (`BalanceBook.removal`) of about this many rows read, or this many
#: blocks of the index: a few milliseconds each at a million customers, so that a key is answered
#: between two of them (the whole revoke of half a million rows took 1.1 s, docs/performance.md).
REMOVAL_ROWS_PER_STEP = 16_384
REMOVAL_BLOCKS_PER_STEP = 12

_DIGITS = re.compile(r"\d+")
_ONE_TRAILING_NUMBER = re.compile(r"(\D*)(\d+)")


def natural_prefix(customer_id: str) -> str:
    """A sort prefix where `CUST-2` comes before `CUST-10` (digit runs zero-padded)."""
    folded = customer_id.casefold()
    usual = _ONE_TRAILING_NUMBER.fullmatch(folded)
    if usual is not None:  # `cust-123`: the same result without a Python call per digit run (3x faster)
        return usual[1] + usual[2].zfill(12)
    return _DIGITS.sub(lambda match: match.group().zfill(12), folded)


Key = tuple[str, str]
"""A row's identity: (customer id, currency)."""

Digest = tuple[str, str]
"""What a filter reads of a block before its texts: all of them joined by newlines, and their common prefix."""


def _digest(texts: list[str]) -> Digest:
    """A block's digest. Search texts never hold a newline (`visible` escapes it).

    The joined string is one untracked object, contiguous in memory however scattered the texts
    are. (Before, a filter's full pass read the texts themselves, so blocks were rebuilt as lists
    of compacted texts; at a million customers those fresh lists, a few hundred a second, were a
    large share of what every young collection walked.)
    """
    return ("\n".join(texts), _common_prefix(texts)) if texts else ("", "")


def _common_prefix(texts: list[str]) -> str:
    """What every text starts with: what the smallest and the largest share, as the texts between them start so too.

    (`os.path.commonprefix` does the same after a copy of its list through `os.fspath`: the first
    filter key after a million new customers spent 100 ms of its 370 there, docs/performance.md.)
    """
    low, high = min(texts), max(texts)
    for at, (mine, theirs) in enumerate(zip(low, high, strict=False)):
        if mine != theirs:
            return low[:at]
    return low


def _block_hits(texts: list[str], digest: Digest, needle: str) -> tuple[list[bool], int]:
    """Whether each text contains `needle`, and how many do; every text is read only when the digest cannot tell.

    Most of a million customers' blocks lack a needle with a digit or two in it (one search in C
    over the joined texts; none spans two texts, which a newline separates), and every text of a
    block holds a needle found in their common prefix (`cust-`): a key costs the blocks that
    match in part, instead of a test of every text (50 ms a million here, docs/performance.md).
    """
    joined, prefix = digest
    if needle not in joined:
        return [False] * len(texts), 0
    if needle in prefix:
        return [True] * len(texts), len(texts)
    hits = list(map(contains, texts, repeat(needle)))
    return hits, hits.count(True)


class SortedIndex:
    """Row keys in sort order, with their sort strings and search texts, kept in blocks.

    A list of lists, like `sortedcontainers`: one flat list of a million keys would move 8 MB
    per insert, and re-sorting it per batch took 45-140 ms (measured); here an insert moves one
    block. Item i is found through the blocks' start offsets, rebuilt lazily after inserts (one
    pass over ~1,000 block lengths). The block lists run in parallel; with a filter set, one
    more holds per key whether its text matches, kept up by inserts like the others, so the
    filtered view (`Filtered`) costs no copy of the keys.
    """

    def __init__(self, entries: Iterable[tuple[str, Key, str]] = ()) -> None:
        """From (sort string, key, search text) entries in sort order."""
        self.needle = ""
        #: With a needle: per block, whether each key's text matches; how many do; where each block's
        #: matches start in the filtered view (rebuilt lazily).
        self._hits: list[list[bool]] = []
        self._hit_counts: list[int] = []
        self._hit_starts: list[int] | None = None
        self._build(list(entries))

    def _build(self, entries: list[tuple[str, Key, str]]) -> None:
        sorts, keys, texts = (list(column) for column in zip(*entries, strict=False)) if entries else ([], [], [])
        self._sorts = [sorts[start:start + BLOCK] for start in range(0, len(sorts), BLOCK)]
        self._keys = [keys[start:start + BLOCK] for start in range(0, len(keys), BLOCK)]
        self._texts = [texts[start:start + BLOCK] for start in range(0, len(texts), BLOCK)]
        #: Per block, its digest; None when texts came or went since it was last made.
        self._digests: list[Digest | None] = list(map(_digest, self._texts))
        self._maxes = [block[-1] for block in self._sorts]
        self._length = len(sorts)
        self._starts: list[int] | None = None
        self._match_all()

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Key]:
        return chain.from_iterable(self._keys)

    @overload
    def __getitem__(self, index: int) -> Key: ...
    @overload
    def __getitem__(self, index: slice) -> list[Key]: ...

    def __getitem__(self, index: int | slice) -> Key | list[Key]:
        return _item(self, index)

    def window(self, start: int, stop: int) -> list[Key]:
        """Keys start..stop-1 (what a screen shows): touches only the blocks they are in."""
        return _window(self._block_starts(), self._keys, start, min(stop, self._length))

    def position(self, sort: str) -> int:
        """Where the sort string `sort` is or would go (bisect_left over the whole index)."""
        block = bisect_left(self._maxes, sort)
        if block == len(self._maxes):
            return self._length
        return self._block_starts()[block] + bisect_left(self._sorts[block], sort)

    def _block_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = list(accumulate(map(len, self._sorts), initial=0))
        return self._starts

    def insert(self, entries: list[tuple[str, Key, str]]) -> None:
        """Add (sort string, key, search text) entries, sorted, whose keys are not in the index yet."""
        if len(entries) > max(BLOCK, self._length // 8):
            # Many at once (a restored partition, the first batch): one merge of two sorted runs
            # costs less than as many single inserts.
            merged = list(zip(chain.from_iterable(self._sorts), chain.from_iterable(self._keys),
                              chain.from_iterable(self._texts), strict=False))
            merged.extend(entries)
            merged.sort()
            self._build(merged)
            return
        sorts_blocks, key_blocks, text_blocks, maxes = self._sorts, self._keys, self._texts, self._maxes
        needle, hit_blocks, hit_counts = self.needle, self._hits, self._hit_counts
        for sort, key, text in entries:
            self._length += 1
            if not maxes:
                sorts_blocks.append([sort])
                key_blocks.append([key])
                text_blocks.append([text])
                self._digests.append(None)
                maxes.append(sort)
                if needle:
                    hit_blocks.append([needle in text])
                    hit_counts.append(int(needle in text))
                continue
            block = bisect_left(maxes, sort)
            if block == len(maxes):
                block -= 1  # beyond every key: it goes at the end of the last block
                maxes[block] = sort
            sorts = sorts_blocks[block]
            at = bisect_left(sorts, sort)
            sorts.insert(at, sort)
            key_blocks[block].insert(at, key)
            text_blocks[block].insert(at, text)
            self._digests[block] = None
            if needle:
                hit = needle in text
                hit_blocks[block].insert(at, hit)
                hit_counts[block] += hit
            if len(sorts) > 2 * BLOCK:
                self._split(block)
        self._starts = None
        self._hit_starts = None

    def _split(self, block: int) -> None:
        def halves(items: list) -> list[list]:
            return [items[:BLOCK], items[BLOCK:]]

        sorts = self._sorts[block]
        self._sorts[block:block + 1] = halves(sorts)
        self._keys[block:block + 1] = halves(self._keys[block])
        self._texts[block:block + 1] = halves(self._texts[block])
        self._digests[block:block + 1] = [None, None]
        self._maxes[block:block + 1] = [sorts[BLOCK - 1], sorts[-1]]
        if self.needle:
            hits = halves(self._hits[block])
            self._hits[block:block + 1] = hits
            self._hit_counts[block:block + 1] = [half.count(True) for half in hits]

    def clear(self) -> None:
        self._build([])

    def rebuild(self, entries: list[tuple[str, Key, str]]) -> None:
        """Hold these entries (in sort order) and nothing else; a filter set stays set."""
        self._build(entries)

    def remove(self, doomed: set[int]) -> None:
        """Drop the keys whose `id` is in `doomed` at once."""
        for _ in self.removing(doomed):
            pass

    def removing(self, doomed: set[int]) -> Iterator[None]:
        """Drop the keys whose `id` is in `doomed`, one pass over the keys in steps of
        REMOVAL_BLOCKS_PER_STEP blocks (it happens on a revoke, not per batch).

        Between two steps the index is whole (its length and block starts right), still holding
        the keys of the blocks not reached yet; nothing else may change it until the last step.
        By identity, not by value: the index holds the very key objects of the book's dict, and
        a million tuple keys hashed anew took 486 ms here, each reading the tuple and both its
        strings from a heap of 1.6 GB, against 300 ms for their addresses (docs/performance.md).
        """
        for step, block in enumerate(reversed(range(len(self._keys))), start=1):
            self._remove_from(block, doomed)
            if step % REMOVAL_BLOCKS_PER_STEP == 0 and block:
                self._settle()
                yield
        self._settle()

    def _remove_from(self, block: int, doomed: set[int]) -> None:
        gone = list(map(doomed.__contains__, map(id, self._keys[block])))
        if not any(gone):
            return
        # Read per block: a filter set or cleared between two steps adds or drops the match flags.
        columns = [self._sorts, self._keys, self._texts, self._hits] if self.needle else \
            [self._sorts, self._keys, self._texts]
        kept = list(map(not_, gone))
        if not any(kept):
            every: list[list[Any]] = [*columns, self._digests, self._maxes]
            for column in every:
                del column[block]
            if self.needle:
                del self._hit_counts[block]
            return
        for column in columns:
            column[block] = list(compress(column[block], kept))
        self._digests[block] = None
        self._maxes[block] = self._sorts[block][-1]
        if self.needle:
            self._hit_counts[block] = self._hits[block].count(True)

    def _settle(self) -> None:
        self._length = sum(map(len, self._keys))
        self._starts = None
        self._hit_starts = None

    def clearing(self) -> Iterator[None]:
        """Hold nothing at once, and free what was held in steps (a million sort strings and
        keys freed at once took a pause of their own)."""
        held = [self._sorts, self._keys, self._texts]
        self._build([])
        while held[0]:
            for column in held:
                del column[-REMOVAL_BLOCKS_PER_STEP * 4:]
            yield

    def tidy(self, blocks: int) -> None:
        """Make the digests of up to `blocks` blocks that took inserts (a little per frame, so that
        the next filter finds them made)."""
        digests = self._digests
        for _ in range(blocks):
            try:
                block = digests.index(None)
            except ValueError:
                return
            self._digest_of(block)

    def _digest_of(self, block: int) -> Digest:
        """The block's digest, made now if texts came or went since it was last made."""
        digest = self._digests[block]
        if digest is None:
            digest = self._digests[block] = _digest(self._texts[block])
        return digest

    def filtered(self, needle: str) -> Filtered:
        """The keys whose search text contains `needle`, as a live view (one filter per index at a time)."""
        if needle != self.needle:
            self.needle = needle
            self._match_all()
        return Filtered(self)

    def _match_all(self) -> None:
        """Test every text against the needle, block by block (`_block_hits`)."""
        self._hit_starts = None
        if not self.needle:
            self._hits = []
            self._hit_counts = []
            return
        needle = self.needle
        found = [_block_hits(texts, self._digest_of(block), needle) for block, texts in enumerate(self._texts)]
        self._hits = [hits for hits, _count in found]
        self._hit_counts = [count for _hits, count in found]


class Filtered:
    """The keys of a `SortedIndex` that match its needle, read through its match flags; follows its inserts."""

    def __init__(self, index: SortedIndex) -> None:
        self.index = index
        self.needle = index.needle

    def _live(self) -> SortedIndex:
        if self.index.needle != self.needle:
            raise RuntimeError("the index was given another filter")
        return self.index

    def _block_starts(self) -> list[int]:
        index = self._live()
        if index._hit_starts is None:
            index._hit_starts = list(accumulate(index._hit_counts, initial=0))
        return index._hit_starts

    def __len__(self) -> int:
        return self._block_starts()[-1]

    def __iter__(self) -> Iterator[Key]:
        index = self._live()
        return chain.from_iterable(map(compress, index._keys, index._hits))

    def __getitem__(self, index: int | slice) -> Key | list[Key]:
        return _item(self, index)

    def window(self, start: int, stop: int) -> list[Key]:
        index = self._live()
        starts = self._block_starts()
        # Only the blocks on screen are expanded from their flags.
        return _window(starts, _LazyCompress(index._keys, index._hits), start, min(stop, starts[-1]))

    def position(self, sort: str) -> int:
        index = self._live()
        block = bisect_left(index._maxes, sort)
        if block == len(index._maxes):
            return len(self)
        at = bisect_left(index._sorts[block], sort)
        return self._block_starts()[block] + index._hits[block][:at].count(True)


class _LazyCompress:
    """Blocks of keys filtered by their flags, each expanded when asked for."""

    def __init__(self, keys: list[list[Key]], hits: list[list[bool]]) -> None:
        self._keys, self._hits = keys, hits

    def __getitem__(self, block: int) -> list[Key]:
        return list(compress(self._keys[block], self._hits[block]))


def _window(starts: list[int], blocks: list[list[Key]] | _LazyCompress, start: int, stop: int) -> list[Key]:
    """Items start..stop-1 of blocks whose cumulative starts are `starts`."""
    start = max(0, start)
    if start >= stop:
        return []
    block = bisect_right(starts, start) - 1
    out = blocks[block][start - starts[block]:stop - starts[block]]
    while len(out) < stop - start:
        # The next block that holds any: a filter matching a few keys far apart leaves hundreds
        # of empty blocks between them, and expanding each from its flags took 60-75 ms a key at
        # a million customers (docs/performance.md).
        block = bisect_right(starts, starts[block + 1]) - 1
        out.extend(blocks[block][:stop - start - len(out)])
    return out


def _item(view: SortedIndex | Filtered, index: int | slice) -> Key | list[Key]:
    length = len(view)
    if isinstance(index, slice):
        start, stop, step = index.indices(length)
        return view.window(start, stop) if step == 1 else list(view)[index]
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError("index out of range")
    return view.window(index, index + 1)[0]


class BalanceBook:
    """The balances this member holds, keyed by (customer id, currency), sorted customer, then currency."""

    def __init__(self) -> None:
        #: The worker's rows, kept as they came: a `BalanceRow` is a msgspec Struct out of the
        #: garbage collector's reach. A tuple of each row's values, kept before, made most of the
        #: young objects every young collection walked at a million customers (docs/performance.md).
        self.rows: dict[Key, BalanceRow] = {}
        self.order = SortedIndex()
        #: customer id -> (the start of its sort strings, its search text); computed once per customer.
        self._customers: dict[str, tuple[str, str]] = {}
        #: Per batch, newest last: when it came, the rows it stored, and (built when first asked)
        #: their ids. A row is highlighted while a batch younger than HIGHLIGHT_SECONDS holds the
        #: very row object the table shows; old batches go out whole, so a change costs nothing more here.
        self._recent: deque[list] = deque()
        self.longest_customer = 8
        #: Bumped whenever keys come or go (not when a balance changes), so views know to rebuild.
        self.membership = 0

    def __len__(self) -> int:
        return len(self.rows)

    def sort_string(self, key: Key) -> str:
        """Natural order of the customer id (`CUST-2` before `CUST-10`), then the id, then the currency."""
        return self._customer(key[0])[0] + key[1]

    def _customer(self, customer_id: str) -> tuple[str, str]:
        parts = self._customers.get(customer_id)
        if parts is None:
            # The filter matches the id as shown (so `\\u200b` finds a zero-width space), casefolded.
            shown = visible(customer_id)
            parts = self._customers[customer_id] = (
                f"{natural_prefix(customer_id)}\x00{customer_id}\x00", shown.casefold())
            self.longest_customer = max(self.longest_customer, len(shown))
        return parts

    def apply(self, rows: Sequence[BalanceRow], removed_partitions: Iterable[int], now: datetime) -> None:
        """Drop the removed partitions' customers, then take the batch's rows as current.

        Removal goes first so a partition revoked and assigned back within one batch keeps
        the rows that arrived after it came back. (A view over the index follows it by itself.)
        """
        self.drop_partitions(removed_partitions)
        table = self.rows
        new: list[Key] = []
        # The hot loop at a million customers: one store in a tuple-keyed dict per row (the
        # ids are the ledger's own string objects, so comparing keys rarely reads memory).
        for row in rows:
            key = (row.customer_id, row.currency)
            size = len(table)
            table[key] = row
            if len(table) != size:
                new.append(key)
        if rows:
            self._recent.append([now, rows, None])
        if new:
            self.order.insert(self._entries(new))
            self.membership += 1

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the rows of these partitions, at once."""
        for _ in self.removal(partitions):
            pass

    def removal(self, partitions: Iterable[int]) -> Iterator[None]:
        """Forget the rows of these partitions in steps of a few milliseconds, yielding between two.

        Between two steps every key of the index has its row (a revoked row may still show until
        the last step); no batch may be taken in before the last one, since the rows are walked
        across steps. One pass over the rows on a revoke, instead of a per-partition column kept up
        by every insert (a fourth column of the index made each new customer 15% dearer, measured).
        """
        gone = set(partitions)
        rows = self.rows
        if not gone or not rows:
            return
        doomed: list[Key] = []
        for chunk in _chunks(rows.items()):
            doomed.extend([key for key, row in chunk if row.partition in gone])
            yield
        if not doomed:
            return
        self.membership += 1
        if len(doomed) == len(rows):  # everything (leaving the group): no need to pick keys out
            doomed.clear()  # the dict's own keys: freed with its rows, a step at a time, not with this list at the end
            self.rows = {}
            yield from self.order.clearing()
            yield from _emptying(rows)
            return
        doomed_ids: set[int] = set()
        for start in range(0, len(doomed), REMOVAL_ROWS_PER_STEP):
            doomed_ids.update(map(id, doomed[start:start + REMOVAL_ROWS_PER_STEP]))
            yield
        for _ in self.order.removing(doomed_ids):
            self.membership += 1
            yield
        self.membership += 1
        # Deleted from the end of the list, a step at a time: each step frees its rows and keys,
        # where building a dict of the rows kept (2.5 times quicker in all) paused 64 ms on one
        # of its resizes, and freeing the old dict's rows at once 50-60 ms (docs/performance.md).
        while doomed:
            for key in doomed[-REMOVAL_ROWS_PER_STEP:]:
                del rows[key]
            del doomed[-REMOVAL_ROWS_PER_STEP:]
            yield
        if len(self.order) != len(self.rows):  # a key in the index that is not the dict's own object
            self.order.rebuild(self._entries(list(self.rows)))

    def _entries(self, keys: list[Key]) -> list[tuple[str, Key, str]]:
        """The index's entries of these keys, sorted."""
        customer = self._customer
        entries = []
        for key in keys:
            start, text = customer(key[0])
            entries.append((start + key[1], key, text))
        entries.sort()
        return entries

    def expire(self, now: datetime) -> bool:
        """Forget batches older than HIGHLIGHT_SECONDS; True when any went out."""
        recent = self._recent
        expired = False
        while recent and (now - recent[0][0]).total_seconds() >= HIGHLIGHT_SECONDS:
            recent.popleft()
            expired = True
        return expired

    def row(self, key: Key) -> BalanceRow:
        """The row as the worker sent it (KeyError if not held)."""
        return self.rows[key]

    def changed_since(self, key: Key) -> datetime | None:
        """When the newest batch still remembered brought the values shown for `key`."""
        values = self.rows.get(key)
        if values is None:
            return None
        shown = id(values)
        for batch in reversed(self._recent):
            if batch[2] is None:
                batch[2] = set(map(id, batch[1]))  # in C; only for batches still on screen
            if shown in batch[2]:
                return batch[0]
        return None

    def is_fresh(self, key: Key, now: datetime) -> bool:
        at = self.changed_since(key)
        return at is not None and (now - at).total_seconds() < HIGHLIGHT_SECONDS

    @property
    def has_recent(self) -> bool:
        return bool(self._recent)

    @property
    def changed_at(self) -> dict[Key, datetime]:
        """Every row still highlighted, key -> since when (for tests and inspection: it walks them all)."""
        return {key: at for key in self.rows if (at := self.changed_since(key)) is not None}


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    """`items` in lists of REMOVAL_ROWS_PER_STEP (the last shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, REMOVAL_ROWS_PER_STEP)):
        yield chunk


def _emptying(rows: dict[Key, BalanceRow]) -> Iterator[None]:
    """Empty a dict no longer shown in steps: the rows only it holds are freed a step at a time."""
    while rows:
        for _ in range(min(len(rows), REMOVAL_ROWS_PER_STEP)):
            rows.popitem()
        yield
