"""rustnce.distributed on a local Ray cluster of 2 CPUs (one instance for the whole module):
shard placement against the NumPy reference's partition rule, the byte-range corpus and the
map/reduce vocabulary against the single-process loader, the sharded classifier step against
the same step on the whole table, skip-gram quality against the single-process trainer, and
runs that survive a killed worker and a killed shard."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import ray

import rustnce
from rustnce import reference
from rustnce.distributed import (
    DistributedConfig,
    ShardedTable,
    ShardLayout,
    TableShard,
    TableSpec,
    count_range,
    merge_counts,
    read_range,
    sharded_sgd_step,
    split_file,
    train_distributed,
)
from rustnce.word2vec import (
    CorpusError,
    TrainingConfig,
    group_purity,
    load_corpus,
    load_word2vec_format,
    planted_corpus,
    read_sentences,
    read_similarity_pairs,
    train,
    word_similarity,
)
from rustnce.word2vec.cli import main


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=256 * 1024 * 1024,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A planted corpus written as text, with each word's planted group."""
    corpus = planted_corpus(tokens=200_000, seed=3)
    path = tmp_path_factory.mktemp("planted") / "planted.txt"
    corpus.write(path)
    return str(path), dict(zip(corpus.words, corpus.groups.tolist()))


def _purity(vectors, vocabulary, groups_of):
    groups = np.array([groups_of.get(word, -1) for word in vocabulary.words])
    return group_purity(vectors, groups).at_1


# ---------------------------------------------------------------- layout and shards


@pytest.mark.parametrize("strategy", ["div", "mod"])
@pytest.mark.parametrize("rows, shards", [(103, 4), (10, 10), (17, 1), (64, 8)])
def test_layout_locates_ids_where_the_reference_partition_rule_puts_them(rows, shards, strategy):
    layout = ShardLayout(rows, shards, strategy)
    ids = np.arange(rows)
    sizes = layout.sizes
    want_shard, want_row = reference.partition_ids(ids, sizes, strategy)
    shard, row = layout.locate(ids)
    np.testing.assert_array_equal(shard, want_shard)
    np.testing.assert_array_equal(row, want_row)
    for p in range(shards):
        np.testing.assert_array_equal(layout.global_ids(p), ids[want_shard == p])


def test_layout_rejects_more_shards_than_rows():
    with pytest.raises(ValueError, match="shards must be at most 5"):
        ShardLayout(5, 6)
    with pytest.raises(ValueError, match="partition_strategy"):
        ShardLayout(5, 2, "random")


@pytest.mark.parametrize("strategy", ["div", "mod"])
def test_rows_land_in_the_shard_the_partition_strategy_names(cluster, strategy):
    rows, dim, shards = 23, 3, 4
    values = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim)
    table = ShardedTable(
        ShardLayout(rows, shards, strategy),
        {"w": TableSpec(dim, "values", values=values), "b": TableSpec(None)},
    )
    try:
        contents = ray.get([actor.contents.remote() for actor in table.actors])
        owner, local = reference.partition_ids(np.arange(rows), table.layout.sizes, strategy)
        for p, part in enumerate(contents):
            expected = np.empty_like(part["w"])
            expected[local[owner == p]] = values[owner == p]
            np.testing.assert_array_equal(part["w"], expected)
        # Embedding lookup over the shards' own arrays (TF's rule, in the core) agrees.
        ids = np.array([0, 22, 5, 5, 13])
        shards_in_place = [part["w"] for part in contents]
        np.testing.assert_array_equal(
            rustnce.embedding_lookup(shards_in_place, ids, strategy), values[ids]
        )
        np.testing.assert_array_equal(table.pull({"w": ids})["w"], values[ids])
        delta = np.full((3, dim), 0.5, dtype=np.float32)
        table.push({"w": (np.array([1, 22, 7]), delta), "b": (np.array([4]), [2.0])}, wait=True)
        gathered = table.gather()
        want = values.copy()
        want[[1, 22, 7]] += 0.5
        np.testing.assert_array_equal(gathered["w"], want)
        assert gathered["b"].tolist() == [0, 0, 0, 0, 2] + [0] * 18
    finally:
        table.shutdown()


def test_pull_and_push_name_bad_ids_and_shapes(cluster):
    table = ShardedTable(ShardLayout(10, 2), {"w": TableSpec(2)})
    try:
        with pytest.raises(IndexError, match=r"ids\['w'\]: id 10 is out of range"):
            table.pull({"w": [3, 10]})
        with pytest.raises(KeyError, match="no table 'v'"):
            table.pull({"v": [3]})
        with pytest.raises(ValueError, match=r"delta has shape \(2, 3\), expected \(2, 2\)"):
            table.push({"w": ([1, 2], np.zeros((2, 3)))})
    finally:
        table.shutdown()


def test_shard_checkpoint_is_written_whole_and_restores_the_rows(tmp_path):
    path = str(tmp_path / "shard0.npz")
    shard = TableShard(0, {"w": (4, 2)}, path, checkpoint_seconds=1e9, restore=False)
    shard.push({"w": (np.array([1, 3]), np.ones((2, 2), np.float32))})
    assert shard.checkpoint() == path
    assert os.listdir(tmp_path) == ["shard0.npz"]  # no temporary file left behind
    shard.push({"w": (np.array([0]), np.ones((1, 2), np.float32))})  # after the checkpoint
    fresh = TableShard(0, {"w": (4, 2)}, path, 1e9, restore=False)
    assert fresh.status()["restored_from"] is None and not fresh.tables["w"].any()
    restored = TableShard(0, {"w": (4, 2)}, path, 1e9, restore=True)
    assert restored.status()["pushes"] == 1 and restored.status()["restored_from"] == 1
    np.testing.assert_array_equal(restored.tables["w"], [[0, 0], [1, 1], [0, 0], [1, 1]])


def test_touch_weighted_push_averages_concurrent_moves_and_keeps_lone_ones():
    """Two writers read row 0 (touch total 0); A pushes a move made of 3 touches, then B one of
    1 touch: A's move, which nothing overlapped, is applied whole, and B's, made while A's 3
    touches were landing, is scaled by its share 1 / (1 + 3). A writer's own earlier touches
    (counted in its ``seen``) never scale its moves; a push without touches adds."""
    shard = TableShard(0, {"w": (3, 2), "b": (3,)}, None, 1e9, restore=False)
    a_move = np.array([[4.0, 8.0]], np.float32)
    b_move = np.array([[-4.0, 0.0]], np.float32)
    shard.push({"w": (np.array([0]), a_move)}, {"w": (np.array([3.0]), np.array([0.0]))})
    shard.push({"w": (np.array([0]), b_move)}, {"w": (np.array([1.0]), np.array([0.0]))})
    np.testing.assert_allclose(shard.tables["w"][0], [3.0, 8.0])  # a + b / 4
    # Row 1, moved by one writer twice (its seen includes its own first push): whole moves.
    for seen in (0.0, 2.0):
        shard.push(
            {"w": (np.array([1]), np.ones((1, 2), np.float32))},
            {"w": (np.array([2.0]), np.array([seen]))},
        )
    np.testing.assert_array_equal(shard.tables["w"][1], [2.0, 2.0])
    # A vector table, and a push without touches is a plain sum.
    shard.push({"b": (np.array([2]), np.array([1.0], np.float32))}, {"b": ([5.0], [0.0])})
    shard.push({"b": (np.array([2]), np.array([1.0], np.float32))}, {"b": ([5.0], [0.0])})
    shard.push({"b": (np.array([2]), np.array([1.0], np.float32))})
    np.testing.assert_allclose(shard.tables["b"][2], 1.0 + 5 / 10 + 1.0)
    rows, totals = shard.pull({"w": np.array([0, 1, 2]), "b": np.array([2])}, with_touches=True)
    assert totals["w"].tolist() == [4.0, 4.0, 0.0] and totals["b"].tolist() == [10.0]


def test_touch_totals_survive_a_checkpoint(tmp_path):
    path = str(tmp_path / "shard0.npz")
    shard = TableShard(0, {"w": (2, 2)}, path, 1e9, restore=False)
    shard.push({"w": (np.array([1]), np.ones((1, 2), np.float32))}, {"w": ([7.0], [0.0])})
    shard.checkpoint()
    restored = TableShard(0, {"w": (2, 2)}, path, 1e9, restore=True)
    assert restored.touches["w"].tolist() == [0.0, 7.0]


def test_push_names_bad_touches(cluster):
    table = ShardedTable(ShardLayout(10, 2), {"w": TableSpec(2)})
    try:
        update = {"w": ([1, 2], np.zeros((2, 2)))}
        with pytest.raises(ValueError, match=r"touches\['w'\]: counts must be positive"):
            table.push(update, touches={"w": ([1.0, 0.0], [0.0, 0.0])})
        with pytest.raises(ValueError, match=r"touches\['w'\]: counts \(3,\)"):
            table.push(update, touches={"w": ([1.0, 1.0, 1.0], [0.0, 0.0])})
        with pytest.raises(KeyError, match="no update for table 'v'"):
            table.push(update, touches={"v": ([1.0], [0.0])})
    finally:
        table.shutdown()


def test_distributed_config_names_an_unknown_merge_rule():
    with pytest.raises(ValueError, match="merge must be one of sum, touches, got 'mean'"):
        DistributedConfig(merge="mean").check()


# ---------------------------------------------------------------- corpus ranges and vocabulary


def test_byte_ranges_hold_whole_lines_and_cover_the_file(tmp_path):
    path = tmp_path / "c.txt"
    lines = [" ".join(f"w{(i * 7 + j) % 13}" for j in range(i % 5 + 1)) for i in range(40)]
    path.write_text("\n".join(lines[:20]) + "\n\n  \n" + "\n".join(lines[20:]) + "\n")
    for parts in (1, 2, 3, 7, 60):
        ranges = split_file(str(path), parts)
        assert len(ranges) == parts
        assert ranges[0].start == 0 and ranges[-1].end == path.stat().st_size
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
        sentences = [s for part in ranges for s in read_range(part)]
        assert sentences == read_sentences(path)


def test_vocabulary_map_reduce_equals_the_single_process_vocabulary(planted):
    path, _ = planted
    want, _ = load_corpus(read_sentences(path), 5)
    for parts in (1, 3, 8):
        got = merge_counts([count_range(part) for part in split_file(path, parts)], 5)
        assert got.words == want.words
        np.testing.assert_array_equal(got.counts, want.counts)


def test_missing_or_empty_corpus_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        split_file(str(tmp_path / "nope.txt"), 2)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty"):
        split_file(str(tmp_path / "empty.txt"), 2)


# ---------------------------------------------------------------- classifier on shards


@pytest.mark.parametrize("loss", ["nce", "sampled_softmax"])
@pytest.mark.parametrize("strategy", ["div", "mod"])
def test_sharded_step_equals_the_same_step_on_the_whole_table(cluster, loss, strategy):
    rng = np.random.default_rng(5)
    classes, dim, batch = 50, 8, 6
    weights = rng.normal(size=(classes, dim)).astype(np.float32)
    biases = rng.normal(size=classes).astype(np.float32)
    inputs = rng.normal(size=(batch, dim)).astype(np.float32)
    labels = rng.integers(0, classes, size=(batch, 1))
    sampled = rustnce.LogUniformSampler(classes, seed=7).sample(labels, 1, 10, True)
    table = ShardedTable(
        ShardLayout(classes, 3, strategy),
        {
            "weights": TableSpec(dim, "values", values=weights),
            "biases": TableSpec(None, "values", values=biases),
        },
    )
    try:
        step = rustnce.nce_sgd_step if loss == "nce" else rustnce.sampled_softmax_sgd_step
        whole_w, whole_b = weights.copy(), biases.copy()
        want_loss, want_grad = step(
            whole_w, whole_b, labels, inputs, 10, classes, 0.5, sampled_values=sampled
        )
        got_loss, got_grad = sharded_sgd_step(
            table, labels, inputs, 10, 0.5, loss=loss, sampled_values=sampled
        )
        np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-7)
        gathered = table.gather()
        np.testing.assert_allclose(gathered["weights"], whole_w, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(gathered["biases"], whole_b, rtol=1e-6, atol=1e-6)
        assert not np.array_equal(whole_w, weights)  # the step did move rows
    finally:
        table.shutdown()


# ---------------------------------------------------------------- skip-gram


@pytest.mark.parametrize(
    "chunk_words, overlap, head_rows, merge", [(700, True, 0, "touches"), (5_000, False, 64, "sum")]
)
def test_one_worker_reproduces_the_single_process_trainer(
    cluster, planted, chunk_words, overlap, head_rows, merge
):
    """One worker draws the single-process trainer's random streams from the same initial
    tables, so pulling rows, training chunks on the local copy, finding the changed rows and
    pushing their deltas must give the single-process vectors up to float32 rounding (a delta
    pushed twice, lost, or scaled as if another worker had touched its row would not)."""
    path, _ = planted
    config = TrainingConfig(epochs=2, seed=1, deterministic=True)
    vocabulary, corpus = load_corpus(read_sentences(path), 5)
    single = train(corpus, vocabulary, config)
    result = train_distributed(
        path,
        config,
        DistributedConfig(
            workers=1,
            shards=3,
            chunk_words=chunk_words,
            overlap=overlap,
            head_rows=head_rows,
            merge=merge,
        ),
    )
    # Many exchanges (a chunk ends after the batch that reaches chunk_words).
    assert sum(unit.chunks for unit in result.units) >= len(corpus) // chunk_words
    for got, want in [
        (result.input_vectors, single.input_vectors),
        (result.output_vectors, single.output_vectors),
        (result.biases, single.biases),
    ]:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.epoch_losses, single.epoch_losses, rtol=1e-7)


def test_planted_quality_matches_the_single_process_trainer(cluster, planted):
    path, groups_of = planted
    config = TrainingConfig(epochs=3, seed=1)
    vocabulary, corpus = load_corpus(read_sentences(path), 5)
    single = _purity(train(corpus, vocabulary, config).input_vectors, vocabulary, groups_of)
    result = train_distributed(path, config, DistributedConfig(workers=2, shards=2))
    assert result.vocabulary.words == vocabulary.words
    distributed = _purity(result.input_vectors, vocabulary, groups_of)
    assert single > 0.5  # far above chance (0.02): the comparison means something
    assert abs(distributed - single) <= 0.03, (distributed, single)
    assert result.words == len(corpus) * 3
    assert not result.redone and not result.restored_shards


def _enwiki(tmp_path_factory):
    """gensim's shortened Wikipedia dump as text (one article piece per line) and the
    WordSim-353 and SimLex-999 pairs, as benches/word2vec_vs_gensim.py loads them."""
    import gensim
    from gensim.corpora.wikicorpus import WikiCorpus

    data = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    dump = os.path.join(
        data, "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    )
    path = tmp_path_factory.mktemp("enwiki") / "enwiki.txt"
    with open(path, "w", encoding="utf-8") as handle:
        for tokens in WikiCorpus(dump, dictionary={}, processes=1).get_texts():
            for start in range(0, len(tokens), 10_000):  # gensim's 10,000-token pieces
                handle.write(" ".join(tokens[start : start + 10_000]) + "\n")
    pairs = {
        "WS353": read_similarity_pairs(os.path.join(data, "wordsim353.tsv")),
        "SimLex": read_similarity_pairs(os.path.join(data, "simlex999.txt")),
    }
    return str(path), pairs


def test_enwiki_quality_is_not_below_the_single_process_trainers(cluster, tmp_path_factory):
    """On gensim's enwiki sample (3 epochs) one run's WordSim-353 score moves by 0.03-0.06 (one
    standard deviation) from seed to seed, for either trainer; over 5 seeds the means differed by
    +0.013 (WordSim-353) and +0.028 (SimLex-999), distributed above single-process (see
    docs/scaling.md). A test of a few runs cannot hold a two-sided 0.03 bound against that
    spread, so it holds the mean of 2 distributed runs to no more than 0.03 below the mean of 3
    single-process runs (a lost or doubled delta costs far more), and to no more than 0.10
    above it."""
    path, pairs = _enwiki(tmp_path_factory)
    vocabulary, corpus = load_corpus(read_sentences(path), 5)
    single = {name: [] for name in pairs}
    for seed in (1, 2, 3):
        vectors = train(corpus, vocabulary, TrainingConfig(epochs=3, seed=seed)).input_vectors
        for name, pair_list in pairs.items():
            single[name].append(word_similarity(vectors, vocabulary, pair_list).spearman)
    distributed = {name: [] for name in pairs}
    for seed in (1, 2):
        result = train_distributed(
            path, TrainingConfig(epochs=3, seed=seed), DistributedConfig(workers=2, shards=2)
        )
        assert result.vocabulary.words == vocabulary.words
        for name, pair_list in pairs.items():
            score = word_similarity(result.input_vectors, vocabulary, pair_list).spearman
            distributed[name].append(score)
    for name in pairs:
        got, want = np.mean(distributed[name]), np.mean(single[name])
        assert want - 0.03 <= got <= want + 0.10, (name, distributed[name], single[name])


def test_a_killed_worker_is_restarted_and_its_block_redone(cluster, planted):
    path, groups_of = planted
    killed = []

    def kill_the_other_worker(stats, handles):
        if not killed:
            victim = 1 - stats.worker
            ray.kill(handles["workers"][victim], no_restart=False)
            killed.append(victim)

    # 3 epochs: the planted groups are then found with purity 0.66 by the single-process
    # trainer (0.44 after 2), well clear of what a table missing a shard's updates would give.
    config = TrainingConfig(epochs=3, seed=1)
    result = train_distributed(
        path,
        config,
        DistributedConfig(workers=2, shards=4, block_tokens=25_000),
        on_unit=kill_the_other_worker,
    )
    assert [unit.worker for unit in result.redone] == killed
    assert "restarted, block redone" in result.report()[0]
    # Every (worker, epoch, block) unit finished exactly once.
    done = [(u.worker, u.epoch, u.block) for u in result.units]
    assert len(done) == len(set(done))
    vocabulary, corpus = load_corpus(read_sentences(path), 5)
    assert result.words == len(corpus) * 3
    purity = _purity(result.input_vectors, vocabulary, groups_of)
    assert purity > 0.5, purity


def test_a_killed_shard_is_restored_from_its_checkpoint(cluster, planted, tmp_path):
    path, groups_of = planted
    units = []

    def kill_shard_two(stats, handles):
        units.append(stats)
        if len(units) == 3:
            handles["table"].kill_shard(2)

    result = train_distributed(
        path,
        TrainingConfig(epochs=3, seed=1),  # as in the killed-worker test
        DistributedConfig(
            workers=2,
            shards=4,
            block_tokens=25_000,
            checkpoint_dir=str(tmp_path),
            checkpoint_seconds=0.2,
        ),
        on_unit=kill_shard_two,
    )
    restored = result.restored_shards
    assert [s["shard"] for s in restored] == [2]
    assert restored[0]["restored_from"] >= 1
    assert any("shard 2 was restarted" in line for line in result.report())
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    vocabulary, _ = load_corpus(read_sentences(path), 5)
    assert np.isfinite(result.input_vectors).all()
    purity = _purity(result.input_vectors, vocabulary, groups_of)
    assert purity > 0.5, purity


def test_more_workers_than_cpus_is_refused(cluster, planted):
    with pytest.raises(ValueError, match=r"workers \(3\) must not exceed the Ray cluster's CPUs"):
        train_distributed(planted[0], TrainingConfig(), DistributedConfig(workers=3))


def test_a_corpus_that_is_not_utf8_is_a_plain_corpus_error(cluster, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9 au lait\n" * 20)
    with pytest.raises(CorpusError) as caught:
        train_distributed(str(path), TrainingConfig(), DistributedConfig(workers=2))
    assert str(caught.value).startswith(f"corpus {str(path)!r} is not UTF-8 text")


def test_cli_trains_with_workers_and_saves_word2vec_text(cluster, planted, tmp_path, capsys):
    output = tmp_path / "vectors.txt"
    code = main(
        [
            "--corpus",
            planted[0],
            "--workers",
            "2",
            "--shards",
            "3",
            "--chunk-words",
            "5000",
            "--epochs",
            "1",
            "--dim",
            "16",
            "--quiet",
            "--output",
            str(output),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "2 workers, 3 shards (mod)" in printed
    assert "no worker or shard was lost" in printed
    words, vectors = load_word2vec_format(output)
    vocabulary, _ = load_corpus(read_sentences(planted[0]), 5)
    assert tuple(words) == vocabulary.words and vectors.shape == (len(words), 16)


def test_cli_distribution_options_need_workers(capsys):
    assert main(["--shards", "4"]) == 2
    assert "--shards needs --workers" in capsys.readouterr().err
    assert main(["--chunk-words", "5000"]) == 2
    assert "--chunk-words needs --workers" in capsys.readouterr().err


def test_cli_without_ray_installed_says_how_to_install_it(monkeypatch, planted, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert main(["--corpus", planted[0], "--workers", "2"]) == 2
    assert "pip install 'rustnce[ray]'" in capsys.readouterr().err
