"""rustnce past one machine, on Ray: tables split into shard actors by TensorFlow's partition
strategies (:class:`ShardedTable`), data-parallel skip-gram training with workers that pull the
rows they need and push row-sparse deltas back (:func:`train_distributed`), and sampled-loss
SGD steps against sharded tables for classifiers with huge output spaces
(:func:`sharded_sgd_step`). Needs Ray (``pip install 'rustnce[ray]'``). See
``docs/scaling.md`` for the design, the bytes moved and the throughput model."""

from .classifier import sharded_sgd_step
from .corpus_ranges import ByteRange, count_range, merge_counts, read_range, split_file
from .layout import ShardLayout
from .shards import ShardedTable, TableShard, TableSpec
from .training import DistributedConfig, DistributedResult, Redone, connect, train_distributed
from .worker import SkipGramWorker, UnitStats

__all__ = [
    "ByteRange",
    "DistributedConfig",
    "DistributedResult",
    "Redone",
    "ShardLayout",
    "ShardedTable",
    "SkipGramWorker",
    "TableShard",
    "TableSpec",
    "UnitStats",
    "connect",
    "count_range",
    "merge_counts",
    "read_range",
    "sharded_sgd_step",
    "split_file",
    "train_distributed",
]
