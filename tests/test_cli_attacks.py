"""The command line against hostile options and files: it never overwrites its own inputs,
never leaves a torn vectors file, and answers every impossible option with one line on stderr
(no traceback) before doing any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from rustnce.word2vec.vectors import load_word2vec_format, save_word2vec_format

CORPUS_TEXT = "the cat sat on the mat\nthe dog sat on the log\n" * 200


def run_cli(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "rustnce", "--quiet", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def assert_one_line_error(result, code):
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rustnce: error:"), result.stderr


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS_TEXT, encoding="utf-8")
    return path


def test_output_equal_to_the_corpus_is_refused_and_the_corpus_kept(corpus):
    result = run_cli("--corpus", str(corpus), "--output", str(corpus), "--min-count", "1")
    assert_one_line_error(result, 2)
    assert corpus.read_text(encoding="utf-8") == CORPUS_TEXT


def test_output_linked_to_the_corpus_is_refused(corpus, tmp_path):
    link = tmp_path / "vectors.txt"
    link.symlink_to(corpus)
    result = run_cli("--corpus", str(corpus), "--output", str(link), "--min-count", "1")
    assert_one_line_error(result, 2)
    assert corpus.read_text(encoding="utf-8") == CORPUS_TEXT


def test_output_equal_to_the_similarity_file_is_refused(corpus, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("cat\tdog\t5.0\nmat\tlog\t4.0\n", encoding="utf-8")
    before = pairs.read_bytes()
    result = run_cli(
        "--corpus",
        str(corpus),
        "--similarity",
        str(pairs),
        "--output",
        str(pairs),
        "--min-count",
        "1",
    )
    assert_one_line_error(result, 2)
    assert pairs.read_bytes() == before


@pytest.mark.parametrize(
    "option",
    [
        ["--seed", "9223372036854775808"],
        ["--threads", "18446744073709551616"],
        ["--epochs", "1e20"],
        ["--epochs", "100000000000000000000"],
        ["--dim", "1000000000"],
        ["--planted-tokens", "100000000000"],
        ["--lr", "1e39"],
        ["--lr", "1e-320"],
        ["--distortion", "1e39", "--sampler", "unigram"],
        ["--window", "-3"],
        ["--negatives", "nan"],
        ["--subsample", "inf"],
    ],
)
def test_impossible_options_get_one_line(option, tmp_path):
    result = run_cli(*option, "--output", str(tmp_path / "v.txt"), timeout=60)
    assert_one_line_error(result, 2)
    assert not (tmp_path / "v.txt").exists()


def test_a_corpus_without_training_pairs_saves_nothing(tmp_path):
    corpus = tmp_path / "words.txt"
    corpus.write_text("".join(f"word{i % 50}\n" for i in range(2000)), encoding="utf-8")
    output = tmp_path / "v.txt"
    result = run_cli("--corpus", str(corpus), "--output", str(output), "--min-count", "1")
    assert_one_line_error(result, 1)
    assert "no training pairs" in result.stderr
    assert not output.exists()


@pytest.mark.parametrize("where", ["missing-directory", "a-directory"])
def test_an_unwritable_output_is_found_before_training(corpus, tmp_path, where):
    output = tmp_path / "missing" / "v.txt" if where == "missing-directory" else tmp_path
    result = run_cli("--corpus", str(corpus), "--output", str(output), "--min-count", "1")
    assert_one_line_error(result, 1)
    assert "skip-gram on" not in result.stdout  # refused before the corpus was read


def test_interrupting_a_save_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "vectors.txt"
    save_word2vec_format(path, ["a", "b"], np.ones((2, 3), np.float32))
    before = path.read_bytes()
    writer = textwrap.dedent(
        f"""
        import numpy as np
        from rustnce.word2vec.vectors import save_word2vec_format
        words = [f"w{{i}}" for i in range(200_000)]
        vectors = np.random.default_rng(0).standard_normal((200_000, 100)).astype(np.float32)
        print("ready", flush=True)
        while True:
            save_word2vec_format({str(path)!r}, words, vectors)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".vectors.txt.") for p in tmp_path.iterdir()):
            assert time.monotonic() < deadline, "no save started"
            time.sleep(0.01)
        time.sleep(0.05)  # well inside writing the temporary file
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        process.kill()
    content = path.read_bytes()
    if content != before:  # a save may have completed before the signal: then it is whole
        words, vectors = load_word2vec_format(path)
        assert len(words) == 200_000 and vectors.shape == (200_000, 100)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".vectors.txt.")]
    assert os.listdir(tmp_path) == ["vectors.txt"]


def test_saving_over_a_link_replaces_the_link_not_its_target(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "vectors.txt"
    link.symlink_to(target)
    save_word2vec_format(link, ["a"], np.zeros((1, 2), np.float32))
    assert target.read_text(encoding="utf-8") == "keep me\n"
    assert not link.is_symlink() and load_word2vec_format(link)[0] == ["a"]
