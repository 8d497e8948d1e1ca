"""TensorFlow's own unit tests of ``embedding_lookup`` over shards, ported: ``EmbeddingLookupTest``
of ``tensorflow/python/kernel_tests/embedding_ops_test.py``, run against rustnce and the NumPy
reference.

TensorFlow's tests call ``tf.compat.v1.nn.embedding_lookup``, whose default partition strategy
is ``"mod"``; rustnce follows TensorFlow 2 (default ``"div"``), so the strategy is passed
explicitly. A ``PartitionedVariable`` is a list of shards here. The expected rows are computed
as TensorFlow's ``_EmbeddingResult`` computes them.

Not ported (rustnce has no counterpart): the ``max_norm`` tests (``testMaxNorm``,
``testMaxNormNontrivial``, ``testHigherRankMaxNorm``, ``testRaggedMaxNorm``), the private
``_embedding_lookup_and_transform`` (``testTransform``) and the gradient checks of the lookup
itself (``testGradientsEmbeddingLookup``, ``testGradientsEmbeddingLookupWithComputedParams``).
"""

from __future__ import annotations

import numpy as np
import pytest


def embedding_params(rng, num_shards, vocab_size, shape=(10,), dtype=np.float32):
    """TensorFlow's ``_EmbeddingParams``: shard ``i`` holds ``vocab_size // num_shards`` rows,
    one more for the first ``vocab_size % num_shards`` shards; values in [1, 2)."""
    shards = []
    for i in range(num_shards):
        rows = vocab_size // num_shards + (1 if i < vocab_size % num_shards else 0)
        shards.append((rng.rand(rows, *shape) + 1).astype(dtype))
    return shards


def embedding_result(shards, ids, vocab_size, partition_strategy):
    """TensorFlow's ``_EmbeddingResult`` (weights all 1): each id's row, located by the
    partition strategy's arithmetic."""
    num_shards = len(shards)
    rows = []
    for i in ids:
        if partition_strategy == "mod":
            rows.append(shards[i % num_shards][i // num_shards])
        else:
            per_shard, extras = divmod(vocab_size, num_shards)
            threshold = extras * (per_shard + 1)
            if i < threshold:
                shard, offset = i // (per_shard + 1), i % (per_shard + 1)
            else:
                shard = extras + (i - threshold) // per_shard
                offset = (i - threshold) % per_shard
            rows.append(shards[shard][offset])
    return np.array(rows, dtype=np.float32)


def test_simple_sharded(implementation):
    """``testSimpleSharded`` (and ``testSimpleShardedPartitionedVariable``,
    ``testSimpleShardedPartitionedResourceVariable``, the same call on a list of shards here):
    ids [0, 0] from 4 rows in 2 shards (both from the first shard)."""
    rng = np.random.RandomState(0)
    shards = embedding_params(rng, 2, 4)
    ids = np.array([0, 0], np.int32)
    got = implementation.embedding_lookup(shards, ids, partition_strategy="mod")
    expected = embedding_result(shards, ids, 4, "mod")
    np.testing.assert_array_equal(got, expected)
    assert got.shape == expected.shape


@pytest.mark.parametrize("id_dtype", [np.int32, np.int64], ids=["Int32Ids", "Int64Ids"])
@pytest.mark.parametrize("strategy", ["mod", "div"], ids=["Mod", "Div"])
def test_sharded_partitioning(implementation, strategy, id_dtype):
    """``testSharded{Mod,Div}Partitioning{Int32,Int64}Ids`` (and the ``PartitionedVariable`` and
    ``UnknownParamShape`` variants, the same call here): 13 rows of dim 10 in 5 shards
    (3, 3, 3, 2, 2); 30 random ids, so some repeat."""
    rng = np.random.RandomState(0)
    vocab_size = 13
    shards = embedding_params(rng, 5, vocab_size)
    ids = rng.randint(vocab_size, size=30).astype(id_dtype)
    got = implementation.embedding_lookup(shards, ids, partition_strategy=strategy)
    expected = embedding_result(shards, ids, vocab_size, strategy)
    np.testing.assert_array_equal(got, expected)
    assert got.shape == expected.shape


def test_construction_non_sharded(implementation):
    params = np.zeros((100, 100), np.float32)
    implementation.embedding_lookup(
        [params], np.array([0, 1, 1, 7], np.int32), partition_strategy="mod"
    )


def test_construction_sharded(implementation):
    params = [np.zeros((100, 100), np.float32) for _ in range(2)]
    implementation.embedding_lookup(
        params, np.array([0, 1, 1, 17], np.int32), partition_strategy="mod"
    )


@pytest.mark.parametrize("params_shape", [(12,), (6, 3)])
@pytest.mark.parametrize("ids_shape", [(3, 2), (4, 3)])
def test_higher_rank(implementation, params_shape, ids_shape):
    """Ids of rank 2 over 1-D and 2-D params: the lookup equals a gather, unsharded and split
    "mod"-wise (strided) into 1, 2 and 3 shards."""
    rng = np.random.RandomState(8)
    params = rng.randn(*params_shape)
    ids = rng.randint(params.shape[0], size=int(np.prod(ids_shape))).reshape(ids_shape)
    simple = implementation.embedding_lookup(params, ids, partition_strategy="mod")
    np.testing.assert_array_equal(simple, params[ids])
    for procs in (1, 2, 3):
        stride = procs * np.arange(params.shape[0] // procs)
        split_params = [params[stride + p] for p in range(procs)]
        sharded = implementation.embedding_lookup(split_params, ids, partition_strategy="mod")
        np.testing.assert_array_equal(simple, sharded)
