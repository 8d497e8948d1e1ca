"""Which shard, and which row of it, holds each global row id: TensorFlow's ``"div"`` and
``"mod"`` partition strategies as rustnce's core implements them (``src/sharding.rs``).

The rule is not written again here: the sizes come from
:func:`rustnce._arguments.shard_sizes`, and the id-to-row mapping is read off the core itself
by an :func:`rustnce.embedding_lookup` over small index shards whose rows hold their own
``(shard, local row)``. That index costs 16 bytes per row of the table (the limit for tables of
hundreds of millions of rows is discussed in ``docs/scaling.md``).
"""

from __future__ import annotations

import numpy as np

from .._arguments import as_choice, as_int, shard_sizes
from .._losses import embedding_lookup

PARTITION_STRATEGIES = ("div", "mod")


class ShardLayout:
    """``rows`` rows split over ``shards`` shards by ``partition_strategy``."""

    def __init__(self, rows: int, shards: int, partition_strategy: str = "div") -> None:
        self.rows = as_int(rows, "rows", 1)
        self.shards = as_int(shards, "shards", 1, self.rows)
        self.partition_strategy = as_choice(
            partition_strategy, "partition_strategy", PARTITION_STRATEGIES
        )
        self.sizes = shard_sizes(self.rows, self.shards)
        # Row r of index shard p is (p, r): looking an id up in them yields where it lives.
        self._index = [
            np.column_stack([np.full(size, p, dtype=np.float64), np.arange(size, dtype=np.float64)])
            for p, size in enumerate(self.sizes)
        ]

    def __reduce__(self) -> tuple[type, tuple[int, int, str]]:
        return (ShardLayout, (self.rows, self.shards, self.partition_strategy))

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(shard, local row)`` of each id in ``[0, rows)``, as int64 arrays."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty.copy()
        where = embedding_lookup(self._index, ids, self.partition_strategy)
        return where[:, 0].astype(np.int64), where[:, 1].astype(np.int64)

    def global_ids(self, shard: int) -> np.ndarray:
        """The global ids shard ``shard`` holds, in the order of its rows."""
        shard = as_int(shard, "shard", 0, self.shards - 1)
        everything = np.arange(self.rows, dtype=np.int64)
        owner, row = self.locate(everything)
        mine = owner == shard
        result = np.empty(self.sizes[shard], dtype=np.int64)
        result[row[mine]] = everything[mine]
        return result

    def split(self, ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each shard, ``(positions in ids, local rows)`` of the ids it holds."""
        owner, row = self.locate(ids)
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(self.shards + 1))
        return [
            (order[bounds[p] : bounds[p + 1]], row[order[bounds[p] : bounds[p + 1]]])
            for p in range(self.shards)
        ]
