"""``python -m rustnce``: the skip-gram trainer's command line (rustnce.word2vec.cli)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rustnce.word2vec import load_word2vec_format, planted_corpus
from rustnce.word2vec.cli import main

# Small and short: each run takes well under a few seconds.
QUICK = ["--planted-tokens", "20000", "--dim", "16", "--epochs", "2", "--quiet"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return float(match.group(1).replace(",", ""))


def test_default_run_finds_the_planted_groups_far_above_chance(capsys, tmp_path):
    output = tmp_path / "vectors.txt"
    code, out, err = run(
        capsys,
        *["--planted-tokens", "100000", "--epochs", "5", "--dim", "32", "--seed", "1"],
        *["--output", output, "--quiet"],
    )
    assert code == 0, err
    purity = number(r"group purity: ([\d.]+)", out)
    chance = number(r"\(chance ([\d.]+)", out)
    assert chance < 0.03
    assert purity > 0.3 and purity > 10 * chance
    assert f"vectors saved to {output}" in out
    words, vectors = load_word2vec_format(output)
    assert vectors.shape == (len(words), 32)
    assert len(words) == number(r"vocabulary ([\d,]+) words", out)
    assert np.isfinite(vectors).all()


def test_saved_vectors_load_with_gensim(capsys, tmp_path):
    from gensim.models import KeyedVectors as keyed_vectors

    output = tmp_path / "vectors.txt"
    code, _, err = run(capsys, *QUICK, "--output", output)
    assert code == 0, err
    words, vectors = load_word2vec_format(output)
    loaded = keyed_vectors.load_word2vec_format(str(output), binary=False)
    assert loaded.index_to_key == words
    assert np.allclose(loaded.vectors, vectors)


def test_progress_goes_to_stderr_and_the_evaluation_to_stdout(capsys, tmp_path):
    quick = [a for a in QUICK if a != "--quiet"]
    code, out, err = run(capsys, *quick, "--output", tmp_path / "v.txt")
    assert code == 0
    epochs = [line for line in err.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2
    assert "words/s" in epochs[-1] and "loss" in epochs[-1] and "100%" in epochs[-1]
    assert "purity" in out and "vectors saved to" in out
    assert not any(line.startswith("epoch") for line in out.splitlines())


@pytest.mark.parametrize("update", ["sequential", "bounded"])
@pytest.mark.parametrize("loss", ["nce", "sampled_softmax", "neg"])
def test_every_loss_trains_and_the_groups_form(capsys, tmp_path, loss, update):
    code, out, err = run(
        capsys,
        *QUICK,
        *("--epochs", "3", "--loss", loss, "--update", update, "--output", tmp_path / "v.txt"),
    )
    assert code == 0, err
    match = re.search(r"loss per pair ([\d.]+) -> ([\d.]+)", out)
    assert match
    first, last = float(match.group(1)), float(match.group(2))
    if update == "bounded":
        assert last < first
    else:
        # Pair by pair each pair's loss follows the steps of its window's earlier pairs, which
        # the first epoch's high rate makes large: on this 20,000-token corpus the loss per
        # pair then rose by up to 0.8% (2.6672 -> 2.6868 for nce) while the groups formed.
        assert last < 1.02 * first
    # Three epochs of 20,000 tokens at dim 16 only begin the groups (purity 0.030-0.042 against
    # chance 0.019, measured for the six runs); random vectors score chance.
    purity = number(r"group purity: ([\d.]+)", out)
    chance = number(r"\(chance ([\d.]+)", out)
    assert purity > 1.5 * chance
    assert f"loss {loss}" in out


def test_unigram_sampler_with_a_distortion(capsys, tmp_path):
    code, out, err = run(
        capsys,
        *QUICK,
        *["--sampler", "unigram", "--distortion", "0.5", "--output", tmp_path / "v.txt"],
    )
    assert code == 0, err
    assert "sampler unigram^0.5" in out


def test_compare_samplers_trains_both_and_prints_them_side_by_side(capsys, tmp_path):
    code, out, err = run(capsys, *QUICK, "--compare-samplers", "--output", tmp_path / "v.txt")
    assert code == 0, err
    table = out[out.index("sampler comparison") :]
    assert "log_uniform (TF)" in table and "unigram^0.75 (w2v)" in table
    assert "words/s" in table and "purity@1" in table
    for sampler in ("log_uniform", "unigram"):
        assert (tmp_path / f"v.{sampler}.txt").exists()


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    planted_corpus(tokens=20_000, groups=5, group_size=6, function_words=4, seed=2).write(path)
    return path


def test_corpus_and_similarity_files_give_spearman_and_the_oov_share(capsys, tmp_path, corpus_file):
    similarity = tmp_path / "pairs.tsv"
    similarity.write_text(
        "# Word 1\tWord 2\tHuman (mean)\n"
        "g0w0\tg0w1\t9.0\ng0w2\tg0w3\t8.5\ng1w0\tg1w1\t9.5\n"
        "g0w0\tg1w0\t1.0\ng2w1\tg3w2\t0.5\nG0W4\tg0w5\t8.0\ng0w0\tunicorn\t5.0\n",
        encoding="utf-8",
    )
    code, out, err = run(
        capsys,
        *QUICK,
        *["--corpus", corpus_file, "--similarity", similarity, "--output", tmp_path / "v.txt"],
        # 20,000 tokens: 4 epochs left the six pairs' correlation anywhere from -0.09 to 0.94
        # across seeds (either sharing of negatives); 8 gave 0.77-0.94 with the defaults.
        *["--epochs", "8"],
    )
    assert code == 0, err
    assert "Spearman" in out
    assert "over 6 of 7 pairs (14.3% out of vocabulary)" in out
    assert number(r"Spearman ([-\d.]+)", out) > 0.3
    assert "purity" not in out  # a text corpus has no planted groups


def error_of(capsys, *args):
    code, out, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rustnce: error: ")
    assert "Traceback" not in err
    return code, lines[0]


def test_missing_corpus_is_a_one_line_input_error(capsys, tmp_path):
    code, line = error_of(capsys, "--corpus", tmp_path / "nope.txt")
    assert code == 1 and "does not exist" in line


def test_empty_corpus_is_a_one_line_input_error(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    code, line = error_of(capsys, "--corpus", empty)
    assert code == 1 and "empty" in line


def test_corpus_too_rare_for_min_count_is_an_input_error(capsys, corpus_file):
    code, line = error_of(capsys, "--corpus", corpus_file, "--min-count", "100000")
    assert code == 1 and "min-count" in line


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "no pairs"])
def test_unreadable_similarity_file_is_a_one_line_input_error(capsys, tmp_path, kind):
    path = tmp_path / "pairs.tsv"
    if kind == "directory":
        path = tmp_path
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00")
    elif kind == "no pairs":
        path.write_text("# nothing here\n", encoding="utf-8")
    code, line = error_of(capsys, *QUICK, "--similarity", path)
    assert code == 1 and "similarity file" in line


def test_unwritable_output_is_a_one_line_input_error(capsys, tmp_path):
    code, line = error_of(capsys, *QUICK, "--output", tmp_path / "no" / "such" / "dir.txt")
    assert code == 1 and "cannot write" in line


@pytest.mark.parametrize(
    "args, mentions",
    [
        (["--dim", "0"], "--dim"),
        (["--window", "0"], "--window"),
        (["--epochs", "-1"], "--epochs"),
        (["--negatives", "many"], "--negatives"),
        (["--lr", "0"], "--lr"),
        (["--subsample", "nan"], "--subsample"),
        (["--loss", "hinge"], "--loss"),
        (["--sampler", "uniform"], "--sampler"),
        (["--negatives", "5000"], "negatives"),
        (["--distortion", "0.5"], "--distortion"),
        (["--compare-samplers", "--sampler", "unigram"], "--sampler"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_impossible_options_are_one_line_usage_errors(capsys, args, mentions):
    code, line = error_of(capsys, *QUICK, *args)
    assert code == 2
    assert mentions in line


def test_python_dash_m_rustnce_exits_with_the_usage_code():
    completed = subprocess.run(
        [sys.executable, "-m", "rustnce", "--window", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "--window" in completed.stderr
    assert completed.stdout == ""


def test_help_describes_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--corpus",
        "--similarity",
        "--loss",
        "--sampler",
        "--distortion",
        "--dim",
        "--window",
        "--negatives",
        "--epochs",
        "--min-count",
        "--subsample",
        "--lr",
        "--threads",
        "--seed",
        "--output",
        "--compare-samplers",
    ):
        assert option in text


def test_divergence_is_a_one_line_input_error(capsys, tmp_path):
    code, line = error_of(
        capsys,
        *QUICK,
        *("--lr", "100", "--batch", "4096", "--update", "sum", "--output", tmp_path / "v.txt"),
    )
    assert code == 1 and "diverged" in line and "--lr" in line
    assert not (tmp_path / "v.txt").exists()


# ------------------------------------------------- the CLI never destroys or tears its files


def _link(kind, target, link):
    if kind == "symlink":
        os.symlink(target, link)
    else:
        os.link(target, link)


def test_output_equal_to_the_corpus_is_refused_before_training(capsys, corpus_file):
    before = corpus_file.read_bytes()
    code, line = error_of(capsys, "--corpus", corpus_file, "--output", corpus_file, "--quiet")
    assert code == 2 and "--corpus" in line and "overwritten" in line
    assert corpus_file.read_bytes() == before


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_output_linked_to_the_corpus_is_refused(capsys, tmp_path, corpus_file, kind):
    before = corpus_file.read_bytes()
    link = tmp_path / "link.txt"
    _link(kind, corpus_file, link)
    code, line = error_of(capsys, "--corpus", corpus_file, "--output", link, "--quiet")
    assert code == 2 and "--corpus" in line
    assert corpus_file.read_bytes() == before


def test_output_equal_to_the_similarity_file_is_refused(capsys, tmp_path):
    similarity = tmp_path / "pairs.tsv"
    similarity.write_text("w1\tw2\t3.0\n")
    code, line = error_of(capsys, *QUICK, "--similarity", similarity, "--output", similarity)
    assert code == 2 and "--similarity" in line
    assert similarity.read_text() == "w1\tw2\t3.0\n"


def test_compare_samplers_outputs_may_not_land_on_the_corpus(capsys, tmp_path):
    # --output v.txt writes v.log_uniform.txt and v.unigram.txt: a corpus of that name is safe.
    corpus = tmp_path / "v.unigram.txt"
    planted_corpus(tokens=20_000, seed=2).write(corpus)
    before = corpus.read_bytes()
    code, line = error_of(
        capsys, "--corpus", corpus, "--compare-samplers", "--output", tmp_path / "v.txt"
    )
    assert code == 2 and "--corpus" in line
    assert corpus.read_bytes() == before


@pytest.mark.parametrize("make", ["directory", "under_a_file"])
def test_an_unwritable_output_is_found_before_training(capsys, tmp_path, make):
    if make == "directory":
        output = tmp_path / "dir"
        output.mkdir()
    else:
        (tmp_path / "file").write_text("x")
        output = tmp_path / "file" / "vectors.txt"
    code, out, err = run(capsys, *QUICK, "--output", output)
    assert code == 1 and "cannot write" in err and len(err.strip().splitlines()) == 1
    assert "loss" not in out  # nothing was trained


def test_the_default_output_is_in_the_users_cache_not_the_working_directory(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *QUICK)
    assert code == 0, err
    saved = tmp_path / "cache" / "rustnce" / "rustnce_vectors.txt"
    assert saved.is_file() and f"saved to {saved}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


SAVE_SLOWLY = """
import sys, numpy as np
from rustnce.word2vec.vectors import save_word2vec_format
words = [f"w{k}" for k in range(300_000)]
save_word2vec_format(sys.argv[1], words, np.ones((len(words), 100), np.float32))
"""


def test_sigint_while_saving_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "vectors.txt"
    target.write_text("1 2\nold 1 2\n")
    process = subprocess.Popen(
        [sys.executable, "-c", SAVE_SLOWLY, str(target)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    # Wait until the temporary file holds some rows, then interrupt the write.
    while time.monotonic() < deadline and process.poll() is None:
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
        if partial and partial[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the save ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "KeyboardInterrupt" in err
    assert target.read_text() == "1 2\nold 1 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.txt"]


@pytest.mark.parametrize(
    "args, mentions",
    [
        (["--seed", "9223372036854775808"], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--threads", "18446744073709551616"], "--threads"),
        (["--epochs", "1e20"], "--epochs"),
        (["--epochs", "100000000000000000000"], "--epochs"),
        (["--dim", "1000000000"], "--dim"),
        (["--planted-tokens", "100000000000"], "--planted-tokens"),
        (["--lr", "1e39"], "--lr"),
        (["--lr", "1e-320"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--sampler", "unigram", "--distortion", "1e39"], "--distortion"),
        (["--window", "99999999999999999999"], "--window"),
        (["--batch", "99999999999999999999"], "--batch"),
        (["--negatives", "99999999999999999999"], "--negatives"),
        (["--min-count", "99999999999999999999"], "--min-count"),
        (["--subsample", "1e400"], "--subsample"),
        (["--update", "adam"], "--update"),
    ],
)
def test_options_beyond_what_the_trainer_holds_are_one_line_usage_errors(capsys, args, mentions):
    code, line = error_of(capsys, *QUICK, *args)
    assert code == 2 and mentions in line


def test_tables_larger_than_the_machine_are_refused_before_allocation():
    from rustnce.word2vec.cli import UsageError, _check_memory

    with pytest.raises(UsageError, match="--dim 100000 with 100,000,000 words"):
        _check_memory(100_000_000, 100_000)
    _check_memory(1000, 100)


def test_a_corpus_without_training_pairs_is_an_input_error(capsys, tmp_path):
    corpus = tmp_path / "one-word-lines.txt"
    corpus.write_text("\n".join(["alpha", "beta", "gamma"] * 50) + "\n")
    output = tmp_path / "v.txt"
    code, line = error_of(capsys, "--corpus", corpus, "--output", output, "--quiet")
    assert code == 1 and "no training pairs" in line
    assert not output.exists()


@pytest.mark.parametrize("option", ["--corpus", "--similarity"])
def test_a_device_given_as_an_input_file_is_refused_instead_of_read_forever(capsys, option):
    code, line = error_of(capsys, *QUICK, option, "/dev/zero")
    assert code == 1 and "device" in line


def test_analogies_print_the_accuracy_per_section_and_overall(capsys, tmp_path, corpus_file):
    from rustnce.word2vec import load_word2vec_format as load

    output = tmp_path / "v.txt"
    code, out, _ = run(capsys, "--corpus", corpus_file, "--output", output, "--quiet")
    assert code == 0
    words, _ = load(output)
    questions = tmp_path / "q.txt"
    a, b, c, d = words[:4]
    questions.write_text(
        f": one\n{a} {b} {c} {d}\n{a} {b} {c} nosuchword\n: two\n{d} {c} {b} {a}\n"
    )
    code, out, err = run(
        capsys, "--corpus", corpus_file, "--output", output, "--analogies", questions, "--quiet"
    )
    assert code == 0, err
    assert re.search(r"analogies: accuracy [\d.]+ \(\d of 2 asked; 1 of 3 questions", out)
    assert re.search(r"one: [\d.n/a]+ \(\d of 1 asked, 2 questions\)", out)
    assert re.search(r"two: [\d.n/a]+ \(\d of 1 asked, 1 questions\)", out)
    code, line = error_of(
        capsys, "--corpus", corpus_file, "--output", questions, "--analogies", questions
    )
    assert code == 2 and "--analogies" in line


# ------------------------------------------------- binary vectors, saved models, resumption


def test_binary_vectors_load_with_gensim_and_equal_the_text_ones(capsys, tmp_path):
    from gensim.models import KeyedVectors

    code, _, err = run(
        capsys, *QUICK, "--deterministic", "--output", tmp_path / "v.bin", "--binary"
    )
    assert code == 0, err
    code, _, err = run(capsys, *QUICK, "--deterministic", "--output", tmp_path / "v.txt")
    assert code == 0, err
    binary = KeyedVectors.load_word2vec_format(tmp_path / "v.bin", binary=True)
    text = KeyedVectors.load_word2vec_format(tmp_path / "v.txt", binary=False)
    assert binary.index_to_key == text.index_to_key and binary.vector_size == 16
    np.testing.assert_allclose(binary.vectors, text.vectors, rtol=1e-5, atol=1e-7)
    # The header and one row laid out as word2vec.c writes them.
    raw = (tmp_path / "v.bin").read_bytes()
    header, rest = raw.split(b"\n", 1)
    assert header == f"{len(text)} 16".encode()
    word = text.index_to_key[0].encode()
    assert rest.startswith(word + b" ")
    row = np.frombuffer(rest[len(word) + 1 : len(word) + 1 + 64], dtype="<f4")
    np.testing.assert_array_equal(row, binary.vectors[0])
    assert rest[len(word) + 65 : len(word) + 66] == b"\n"


def test_resume_continues_where_the_save_stopped(capsys, tmp_path, corpus_file):
    import dataclasses

    from rustnce.word2vec import load_corpus, read_sentences
    from rustnce.word2vec.training import TrainingConfig, train
    from rustnce.word2vec.vectors import load_model, save_model

    options = ["--corpus", corpus_file, "--dim", "16", "--epochs", "4", "--quiet"]
    options.append("--deterministic")  # the same bits however it is cut
    code, _, err = run(
        capsys, *options, "--output", tmp_path / "whole.txt", "--save-model", tmp_path / "m.npz"
    )
    assert code == 0, err
    assert load_model(tmp_path / "m.npz")[4] == 4
    # A model of the same run stopped after its second epoch.
    vocabulary, corpus = load_corpus(read_sentences(corpus_file), 5)
    config = TrainingConfig(dim=16, epochs=4, deterministic=True)

    def save_and_stop(result):
        if result.epochs_done == 2:
            settings = dataclasses.asdict(config)
            settings.pop("threads")
            tables = (result.input_vectors, result.output_vectors, result.biases)
            save_model(
                tmp_path / "half.npz", vocabulary.words, vocabulary.counts, tables, settings, 2
            )
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(corpus, vocabulary, config, on_epoch_end=save_and_stop)
    code, out, err = run(
        capsys,
        *["--corpus", corpus_file, "--quiet", "--deterministic", "--resume", tmp_path / "half.npz"],
        *["--output", tmp_path / "resumed.txt", "--save-model", tmp_path / "half.npz"],
    )
    assert code == 0, err
    assert (tmp_path / "resumed.txt").read_bytes() == (tmp_path / "whole.txt").read_bytes()
    assert load_model(tmp_path / "half.npz")[4] == 4
    code, line = error_of(capsys, "--corpus", corpus_file, "--resume", tmp_path / "half.npz")
    assert code == 1 and "finished its 4 epochs" in line


def test_fixed_biases_flag_keeps_the_saved_biases_at_their_start(capsys, tmp_path, corpus_file):
    from rustnce.word2vec.training import initial_biases
    from rustnce.word2vec.vectors import load_model

    options = ["--corpus", corpus_file, "--dim", "16", "--epochs", "2", "--quiet"]
    for flag, name in (([], "trained.npz"), (["--fixed-biases", "--loss", "neg"], "fixed.npz")):
        code, _, err = run(
            capsys, *options, *flag, "--output", tmp_path / "v.txt", "--save-model", tmp_path / name
        )
        assert code == 0, err
    _, counts, (_, _, fixed), settings, _ = load_model(tmp_path / "fixed.npz")
    assert settings["fixed_biases"] is True and settings["loss"] == "neg"
    np.testing.assert_array_equal(fixed, initial_biases(counts, "zeros"))
    _, counts, (_, _, trained), settings, _ = load_model(tmp_path / "trained.npz")
    assert settings["fixed_biases"] is False
    assert not np.array_equal(trained, initial_biases(counts, "log_unigram"))


@pytest.mark.parametrize("content", [b"", b"not a model", b"PK\x03\x04broken"])
def test_resuming_from_something_else_is_a_one_line_error(capsys, tmp_path, content):
    model = tmp_path / "m.npz"
    model.write_bytes(content)
    code, line = error_of(capsys, *QUICK, "--resume", model, "--output", tmp_path / "v.txt")
    assert code == 1 and "cannot resume" in line


def test_save_model_may_not_be_an_input_or_the_output(capsys, tmp_path, corpus_file):
    code, line = error_of(capsys, "--corpus", corpus_file, "--save-model", corpus_file)
    assert code == 2 and "--corpus" in line
    out = tmp_path / "v.txt"
    code, line = error_of(capsys, *QUICK, "--output", out, "--save-model", out)
    assert code == 2 and "--output" in line
