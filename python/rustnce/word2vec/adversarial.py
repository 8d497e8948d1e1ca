"""Corpora shaped to break a skip-gram trainer, for the stability tests and benchmark: each
concentrates many pairs of one batch on a few rows, which is what made plain summed SGD steps
blow up. Every generator returns lines of text (one sentence per line)."""

from __future__ import annotations

import numpy as np


def _words(count: int) -> list[str]:
    return [f"w{k}" for k in range(count)]


def repeated_sentence(tokens: int, seed: int = 0) -> list[str]:
    """One 12-word sentence, repeated: every batch holds the same few rows."""
    rng = np.random.default_rng(seed)
    sentence = " ".join(_words(40)[k] for k in rng.permutation(40)[:12])
    return [sentence] * max(tokens // 12, 1)


def dominant_word(tokens: int, seed: int = 0) -> list[str]:
    """One word makes half the tokens (train it with subsampling off): it is the center and
    the context of about half the pairs of every batch."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(_words(2000))
    ranks = np.arange(1, vocabulary.size + 1, dtype=np.float64)
    others = rng.choice(vocabulary, size=tokens, p=(1 / ranks) / (1 / ranks).sum())
    others[rng.random(tokens) < 0.5] = "the"
    return [" ".join(others[start : start + 15]) for start in range(0, tokens, 15)]


def huge_vocabulary(tokens: int, words: int, seed: int = 0) -> list[str]:
    """``words`` distinct words, each seen about ``tokens / words`` times, uniformly mixed."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(_words(words))
    ids = np.concatenate([np.arange(words), rng.integers(0, words, max(tokens - words, 0))])
    rng.shuffle(ids)
    text = vocabulary[ids]
    return [" ".join(text[start : start + 20]) for start in range(0, text.size, 20)]


def long_lines(tokens: int, line_tokens: int = 10_000, seed: int = 0) -> list[str]:
    """Zipfian text in lines of ``line_tokens`` tokens (windows never end at a line)."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(_words(5000))
    ranks = np.arange(1, vocabulary.size + 1, dtype=np.float64)
    text = rng.choice(vocabulary, size=tokens, p=(1 / ranks) / (1 / ranks).sum())
    return [" ".join(text[start : start + line_tokens]) for start in range(0, tokens, line_tokens)]


def duplicated_paragraphs(tokens: int, copies: int = 50, seed: int = 0) -> list[str]:
    """A few Zipfian paragraphs, each repeated ``copies`` times in a row."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(_words(3000))
    ranks = np.arange(1, vocabulary.size + 1, dtype=np.float64)
    lines: list[str] = []
    while len(lines) * 12 < tokens:
        paragraph = [
            " ".join(rng.choice(vocabulary, size=12, p=(1 / ranks) / (1 / ranks).sum()))
            for _ in range(8)
        ]
        for _ in range(copies):
            lines.extend(paragraph)
    return lines


#: name -> (generator of ``tokens``, extra CLI options); the set the stability checks run.
ADVERSARIAL = {
    "repeated-sentence": (repeated_sentence, []),
    "dominant-word": (dominant_word, ["--subsample", "0"]),
    "huge-vocabulary": (lambda tokens: huge_vocabulary(tokens, max(tokens // 6, 50)), []),
    "long-lines": (long_lines, []),
    "duplicated-paragraphs": (duplicated_paragraphs, []),
}
