"""Training on text files read as training goes (rustnce's TextCorpus): the same vocabulary and
the same vectors as the in-memory path, whatever the compression or the split into files, and
clear errors for corrupt or changing files."""

from __future__ import annotations

import bz2
import gzip
import os
import re

import numpy as np
import pytest

from rustnce.__main__ import main
from rustnce.word2vec import (
    CorpusError,
    TextCorpus,
    TrainingConfig,
    load_corpus,
    open_corpus,
    planted_corpus,
    read_sentences,
    train,
)
from rustnce.word2vec.vectors import load_word2vec_format

CONFIG = dict(dim=16, epochs=2, window=3, seed=5, deterministic=True)


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> str:
    """About 40,000 tokens of planted text, with the line ends and separators Python's
    ``str.split`` and universal newlines know (CRLF, lone CR, tabs, no-break space, \\x1c)."""
    corpus = planted_corpus(tokens=40_000, groups=6, group_size=8, function_words=4, seed=11)
    path = tmp_path_factory.mktemp("planted") / "planted.txt"
    corpus.write(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    odd = ["\r\n", "\r", "\n", "\n\n  \t\n"]
    pieces = []
    for k, line in enumerate(lines):
        if k % 7 == 3:
            line = line.replace(" ", "\t", 1).replace(" ", "\u00a0", 1).replace(" ", "\x1c", 1)
        pieces.append(line + odd[k % len(odd)])
    return "".join(pieces)


def _train(corpus, vocabulary):
    return train(corpus, vocabulary, TrainingConfig(**CONFIG))


def _lines(text: str) -> list[str]:
    """The text cut after each ``\\n`` (``str.splitlines`` would also cut at ``\\x1c``)."""
    return [line + "\n" for line in text.split("\n")]


def _write(path, text: str, how: str) -> None:
    data = text.encode("utf-8")
    if how == "gzip":
        data = gzip.compress(data, compresslevel=1)
    elif how == "bzip2":
        data = bz2.compress(data, compresslevel=1)
    path.write_bytes(data)


def test_text_files_read_and_train_as_the_in_memory_corpus(tmp_path, text):
    plain = tmp_path / "corpus.txt"
    _write(plain, text, "plain")
    memory_vocabulary, memory_corpus = load_corpus(read_sentences(plain), min_count=3)
    vocabulary, corpus = open_corpus(plain, min_count=3)
    assert vocabulary.words == memory_vocabulary.words
    assert np.array_equal(vocabulary.counts, memory_vocabulary.counts)
    assert corpus.tokens == len(memory_corpus)
    assert corpus.raw_tokens == memory_corpus.raw_tokens
    expected = _train(memory_corpus, memory_vocabulary)
    streamed = _train(corpus, vocabulary)
    # Same sentences, same random draws: bit-identical tables.
    np.testing.assert_array_equal(streamed.input_vectors, expected.input_vectors)
    np.testing.assert_array_equal(streamed.output_vectors, expected.output_vectors)
    assert streamed.words == expected.words and streamed.pairs == expected.pairs


@pytest.mark.parametrize("how", ["gzip", "bzip2", "directory"])
def test_gzip_bzip2_and_directories_give_the_plain_files_vectors(tmp_path, text, how):
    plain = tmp_path / "corpus.txt"
    _write(plain, text, "plain")
    vocabulary, corpus = open_corpus(plain, min_count=3)
    expected = _train(corpus, vocabulary)
    if how == "directory":
        # Three files (one compressed, one in a subdirectory) read in path order, and a
        # hidden file that is skipped.
        lines = _lines(text)
        third = len(lines) // 3
        parts = tmp_path / "parts"
        (parts / "b").mkdir(parents=True)
        _write(parts / "a.txt", "".join(lines[:third]), "plain")
        _write(parts / "b" / "middle.gz", "".join(lines[third : 2 * third]), "gzip")
        _write(parts / "c.txt", "".join(lines[2 * third :]), "plain")
        _write(parts / ".hidden", "unrelated words " * 1000, "plain")
        source = parts
    else:
        source = tmp_path / "corpus.data"  # the compression is found from the content
        _write(source, text, how)
    read_vocabulary, read_corpus = open_corpus(source, min_count=3)
    assert read_vocabulary.words == vocabulary.words
    assert np.array_equal(read_vocabulary.counts, vocabulary.counts)
    if how != "directory":
        assert read_corpus.compressions == [how]
    else:
        assert [os.path.basename(f) for f in read_corpus.files] == ["a.txt", "middle.gz", "c.txt"]
    result = _train(read_corpus, read_vocabulary)
    np.testing.assert_array_equal(result.input_vectors, expected.input_vectors)


def test_several_files_on_the_command_line_train_as_their_concatenation(tmp_path, text):
    lines = _lines(text)
    half = len(lines) // 2
    _write(tmp_path / "whole.txt", text, "plain")
    _write(tmp_path / "one.txt.bz2", "".join(lines[:half]), "bzip2")
    _write(tmp_path / "two.txt", "".join(lines[half:]), "plain")
    options = ["--dim", "16", "--epochs", "2", "--min-count", "3", "--quiet", "--deterministic"]
    whole, split = tmp_path / "whole.vec", tmp_path / "split.vec"
    assert main(["--corpus", str(tmp_path / "whole.txt"), "--output", str(whole), *options]) == 0
    files = [str(tmp_path / "one.txt.bz2"), str(tmp_path / "two.txt")]
    assert main(["--corpus", *files, "--output", str(split), *options]) == 0
    words_whole, vectors_whole = load_word2vec_format(whole)
    words_split, vectors_split = load_word2vec_format(split)
    assert words_whole == words_split
    np.testing.assert_array_equal(vectors_whole, vectors_split)


def test_a_corrupt_gzip_file_is_a_clear_error_naming_it(tmp_path, capsys):
    good = gzip.compress(b"some words here\nand more words here\n" * 200)
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(good[: len(good) // 2] + b"\x00garbage" * 4)
    with pytest.raises(CorpusError, match=r"broken\.txt\.gz.*gzip"):
        open_corpus(broken, min_count=1)
    code = main(["--corpus", str(broken), "--output", str(tmp_path / "v.txt"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "broken.txt.gz" in err[0], err
    assert not (tmp_path / "v.txt").exists()


@pytest.mark.parametrize(
    "content, message",
    [(b"\xff\xfe words\n", "UTF-8 text (line 1)"), (b"", "empty"), (b" \n\t\r\n", "empty")],
)
def test_unreadable_text_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=re.escape(message)):
        open_corpus(path, min_count=1)


def test_missing_files_and_empty_directories_are_refused(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        open_corpus([tmp_path / "nope.txt"], min_count=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="without files"):
        open_corpus(tmp_path / "empty", min_count=1)


@pytest.mark.parametrize("change", ["append", "rewrite"])
def test_a_corpus_file_changing_during_training_stops_it_cleanly(tmp_path, text, change):
    path = tmp_path / "corpus.txt"
    _write(path, text, "plain")
    vocabulary, corpus = open_corpus(path, min_count=3)
    changed = []

    def change_file(progress):
        if changed:
            return
        changed.append(progress.words)
        if change == "append":
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("more words at the end\n")
        else:  # replaced as editors save: same size, other words, newer time
            stat = os.stat(path)
            replacement = tmp_path / "replacement.txt"
            replacement.write_text(text[::-1], encoding="utf-8")
            os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
            os.replace(replacement, path)

    with pytest.raises(CorpusError, match=r"corpus\.txt.*changed after it was counted"):
        train(
            corpus,
            vocabulary,
            TrainingConfig(**CONFIG),
            progress=change_file,
            progress_interval=0.0,
        )
    assert changed and changed[0] < corpus.tokens * CONFIG["epochs"]


def test_an_output_inside_a_corpus_directory_is_refused(tmp_path, capsys):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("a b c a b c\n" * 50, encoding="utf-8")
    output = tmp_path / "texts" / "vectors.txt"
    code = main(["--corpus", str(tmp_path / "texts"), "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "inside the --corpus directory" in err
    assert not output.exists()


def test_a_resumed_model_reads_the_corpus_with_its_own_vocabulary(tmp_path, text):
    path = tmp_path / "corpus.txt"
    _write(path, text, "plain")
    vocabulary, _ = open_corpus(path, min_count=3)
    # Add words the model never saw: they are dropped, the model's ids and counts kept.
    extra = tmp_path / "extra.txt"
    extra.write_text("unseen novel words " * 30 + "\n", encoding="utf-8")
    same, corpus = open_corpus([path, extra], min_count=1, vocabulary=vocabulary)
    assert same is vocabulary
    assert corpus.words == list(vocabulary.words)
    assert corpus.raw_tokens == sum(len(s) for s in read_sentences(path)) + 90
    with pytest.raises(ValueError, match="give both or neither"):
        TextCorpus([str(path)], 1, words=["a"])


def test_a_child_forked_mid_epoch_gets_an_error_instead_of_waiting_forever(tmp_path, text):
    import signal
    import time

    from rustnce._rustnce import SkipGramTrainer

    path = tmp_path / "corpus.txt"
    _write(path, text * 4, "plain")
    vocabulary, corpus = open_corpus(path, min_count=3)
    trainer = SkipGramTrainer(
        corpus,
        dim=8,
        window=2,
        negatives=5,
        epochs=1,
        batch_pairs=64,
        loss="neg",
        sampler="unigram",
        distortion=0.75,
        learning_rate=0.025,
        subsample=0.0,
        seed=1,
    )
    size = len(vocabulary)
    tables = (
        np.zeros((size, 8), np.float32),
        np.zeros((size, 8), np.float32),
        np.zeros(size, np.float32),
    )
    assert not trainer.run(*tables, 1000).finished  # the reading thread runs ahead
    pid = os.fork()
    if pid == 0:  # the child: an error, at once, then the trainer can be dropped
        code = 3
        try:
            trainer.run(*tables, 10**9)
        except ValueError as error:
            code = 0 if "forked" in str(error) else 4
        except BaseException:
            code = 5
        try:
            del trainer
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    # The parent's trainer goes on to the end.
    while not trainer.run(*tables, 10**9).finished:
        pass
