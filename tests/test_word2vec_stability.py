"""The trainer's defaults never diverge: on gensim's real English test corpus and on corpora
shaped to concentrate a batch's pairs on a few rows. Each corpus is small (a second or two);
``benches/word2vec_stability.py`` runs the same set at millions of tokens and on larger real
corpora. The plain summed SGD step (``update="sum"``) is run beside it to show the corpora do
break an unbounded step."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gensim.test.utils import datapath as gensim_test_data

from rustnce.word2vec import adversarial
from rustnce.word2vec.corpus import load_corpus
from rustnce.word2vec.training import TrainingConfig, TrainingDiverged, train


def _train(lines, **options):
    vocabulary, corpus = load_corpus([line.split() for line in lines], options.pop("min_count", 5))
    return train(corpus, vocabulary, TrainingConfig(**options))


def _real_lines():
    path = gensim_test_data("lee_background.cor")
    assert os.path.getsize(path) > 100_000
    with open(path, encoding="utf-8") as handle:
        return [line.lower() for line in handle] * 4  # 240k tokens


@pytest.mark.parametrize("update", ["bounded", "sequential"])
def test_defaults_train_on_real_english_text_and_the_loss_falls(update):
    result = _train(_real_lines(), update=update)
    assert np.isfinite(result.input_vectors).all()
    assert result.epoch_losses[-1] < result.epoch_losses[0]


def test_the_plain_summed_step_diverges_where_the_bounded_one_trains():
    # What the bounded step removes: the same defaults with update="sum" blow up in the first
    # epoch (on real text too, at a few hundred thousand words: see the stability benchmark).
    lines = adversarial.dominant_word(150_000)
    with pytest.raises(TrainingDiverged):
        _train(lines, subsample=0.0, update="sum")
    assert np.isfinite(_train(lines, subsample=0.0).input_vectors).all()


@pytest.mark.parametrize("update", ["bounded", "sequential"])
@pytest.mark.parametrize("name", sorted(adversarial.ADVERSARIAL))
def test_defaults_never_diverge_on_adversarial_corpora(name, update):
    generate, cli_options = adversarial.ADVERSARIAL[name]
    options = {"update": update}
    if cli_options == ["--subsample", "0"]:
        options["subsample"] = 0.0
    result = _train(generate(150_000), **options)
    assert np.isfinite(result.input_vectors).all()
    assert np.isfinite(result.output_vectors).all()
    assert all(np.isfinite(loss) for loss in result.epoch_losses)
    # No loss blow-up: the last epoch's mean loss per pair stays near where training started.
    assert result.epoch_losses[-1] < 1.5 * result.epoch_losses[0]


def test_a_huge_vocabulary_of_words_seen_once_trains():
    lines = adversarial.huge_vocabulary(60_000, 50_000)
    result = _train(lines, min_count=1, epochs=2)
    assert result.input_vectors.shape[0] == 50_000
    assert np.isfinite(result.input_vectors).all()


@pytest.mark.parametrize("options", [{"batch_pairs": 4096}, {"learning_rate": 0.1}])
def test_larger_batches_and_rates_stay_finite(options):
    result = _train(adversarial.dominant_word(100_000), subsample=0.0, **options)
    assert np.isfinite(result.input_vectors).all()
