"""Plain NumPy reference implementation of the rustnce API.

This module is the independent oracle that the tests compare the Rust implementation
against. It was written from the project's account of TensorFlow 2.21
(``docs/semantics.md``; section numbers below refer to it) and implements the whole
Python API of ``docs/api.md`` with the same names and signatures:

* Philox4x32-10 and TensorFlow's way of consuming it (§7.9), exact uniform integers (§7.3);
* the five candidate samplers as classes and as ``*_candidate_sampler`` functions with
  TensorFlow's kernel cache (§7);
* ``compute_accidental_hits`` (§8) and ``embedding_lookup`` over shards (§9);
* ``compute_sampled_logits``, ``nce_loss`` and ``sampled_softmax_loss`` (§2-§4) plus
  ``full_sigmoid_loss`` and ``full_softmax_loss``;
* ``nce_loss_and_gradients`` and ``sampled_softmax_loss_and_gradients`` (§6).

It favours readability over speed: the random stream and the samplers are pure Python,
one value at a time, exactly in the order TensorFlow's kernels consume it; the losses are
straightforward NumPy in the dtype of ``inputs``.

Bit-exactness of float32 transcendental functions: TensorFlow's kernels call the C library's
``log1pf``, ``expm1f`` and ``powf`` (and ``exp``/``log``/``log1p`` in double). This module
calls the same C functions through ``ctypes`` when the C math library can be loaded (see
``FLOAT32_MATH``), because NumPy's own float32 ``log1p``/``expm1``/``power`` (SIMD
implementations) differ from glibc's in the last bit for a few percent of arguments.
Double-precision functions come from Python's ``math`` module, which wraps the C library.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Callable

import numpy as np

__all__ = [
    "FLT_MAX",
    "FLOAT32_MATH",
    "PhiloxRandom",
    "SimplePhilox",
    "GuardedPhiloxRandom",
    "philox4x32_10",
    "seed_attributes",
    "expected_count",
    "UniformSampler",
    "LogUniformSampler",
    "LearnedUnigramSampler",
    "FixedUnigramSampler",
    "AllCandidateSampler",
    "uniform_candidate_sampler",
    "log_uniform_candidate_sampler",
    "learned_unigram_candidate_sampler",
    "fixed_unigram_candidate_sampler",
    "all_candidate_sampler",
    "reset_sampler_cache",
    "compute_accidental_hits",
    "partition_ids",
    "embedding_lookup",
    "compute_sampled_logits",
    "nce_loss",
    "sampled_softmax_loss",
    "full_sigmoid_loss",
    "full_softmax_loss",
    "nce_loss_and_gradients",
    "sampled_softmax_loss_and_gradients",
]

#: The float32 maximum; the accidental-hit mask is -FLT_MAX in every dtype (§2 step 9, §10).
FLT_MAX = 3.4028234663852886e38

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_INT32_MAX = 2**31 - 1
_DEFAULT_GRAPH_SEED = 87654321


# ---------------------------------------------------------------------------------------
# float32 math exactly as C computes it
# ---------------------------------------------------------------------------------------


def _load_c_float32_math():
    """Return (log1pf, expm1f, powf) from the C math library, or None if unavailable."""
    try:
        import ctypes
        import ctypes.util

        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        functions = []
        for name, nargs in (("log1pf", 1), ("expm1f", 1), ("powf", 2)):
            function = getattr(libm, name)
            function.restype = ctypes.c_float
            function.argtypes = [ctypes.c_float] * nargs
            functions.append(function)
        return tuple(functions)
    except (OSError, AttributeError, TypeError):
        return None


_C_MATH = _load_c_float32_math()

#: Which float32 log1p/expm1/pow this module uses: "libm" (the C library, as TensorFlow and
#: Rust) or "numpy" (fallback when the C library cannot be loaded).
FLOAT32_MATH = "libm" if _C_MATH is not None else "numpy"


def _log1pf(x) -> np.float32:
    if _C_MATH is not None:
        return np.float32(_C_MATH[0](float(x)))
    return np.log1p(np.float32(x))


def _expm1f(x) -> np.float32:
    if _C_MATH is not None:
        return np.float32(_C_MATH[1](float(x)))
    return np.expm1(np.float32(x))


def _powf(x, y) -> np.float32:
    if _C_MATH is not None:
        return np.float32(_C_MATH[2](float(x), float(y)))
    return np.power(np.float32(x), np.float32(y))


# ---------------------------------------------------------------------------------------
# Random numbers: Philox4x32-10 as TensorFlow uses it (§7.9)
# ---------------------------------------------------------------------------------------

_PHILOX_M0 = 0xD2511F53  # multiplies counter word 0
_PHILOX_M1 = 0xCD9E8D57  # multiplies counter word 2
_PHILOX_W0 = 0x9E3779B9  # key word 0 increment
_PHILOX_W1 = 0xBB67AE85  # key word 1 increment


def philox4x32_10(counter: Sequence[int], key: Sequence[int]) -> tuple[int, int, int, int]:
    """One Philox4x32-10 block: 4 counter words and 2 key words -> 4 random 32-bit words."""
    c0, c1, c2, c3 = (int(word) & _MASK32 for word in counter)
    k0, k1 = (int(word) & _MASK32 for word in key)
    for round_index in range(10):
        if round_index > 0:
            k0 = (k0 + _PHILOX_W0) & _MASK32
            k1 = (k1 + _PHILOX_W1) & _MASK32
        product0 = _PHILOX_M0 * c0
        product1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (
            (product1 >> 32) ^ c1 ^ k0,
            product1 & _MASK32,
            (product0 >> 32) ^ c3 ^ k1,
            product0 & _MASK32,
        )
    return c0, c1, c2, c3


class PhiloxRandom:
    """TensorFlow's PhiloxRandom: a key and a 128-bit block counter.

    ``PhiloxRandom(seed, seed2)`` uses key ``(lo32(seed), hi32(seed))`` and initial counter
    words ``(0, 0, lo32(seed2), hi32(seed2))``; counter word 0 is the least significant.
    """

    def __init__(self, seed: int, seed2: int):
        seed &= _MASK64
        seed2 &= _MASK64
        self.key = (seed & _MASK32, seed >> 32)
        self.counter = seed2 << 64  # words (0, 0, lo32(seed2), hi32(seed2))

    def copy(self) -> PhiloxRandom:
        other = PhiloxRandom(0, 0)
        other.key = self.key
        other.counter = self.counter
        return other

    def counter_words(self) -> tuple[int, int, int, int]:
        return tuple((self.counter >> (32 * i)) & _MASK32 for i in range(4))  # type: ignore

    def skip(self, num_blocks: int) -> None:
        """Advance the 128-bit counter by ``num_blocks`` blocks."""
        self.counter = (self.counter + num_blocks) % 2**128

    def next_block(self) -> tuple[int, int, int, int]:
        """The 4 words of the current block; then the counter moves to the next block."""
        block = philox4x32_10(self.counter_words(), self.key)
        self.skip(1)
        return block


class SimplePhilox:
    """TensorFlow's SimplePhilox: a stream of 32-bit words, the 4 words of each block in order."""

    def __init__(self, generator: PhiloxRandom):
        self.generator = generator
        self._words: list[int] = []

    def rand32(self) -> int:
        if not self._words:
            self._words = list(self.generator.next_block())
        return self._words.pop(0)

    def rand64(self) -> int:
        low = self.rand32()
        high = self.rand32()
        return low | (high << 32)

    def rand_double(self) -> float:
        """Uniform in [0, 1): 52 mantissa bits, 20 from the first word and 32 from the second.

        TensorFlow builds the double 1.mantissa and subtracts 1.0, which is exactly
        mantissa / 2**52.
        """
        x0 = self.rand32()
        x1 = self.rand32()
        mantissa = ((x0 & 0xFFFFF) << 32) | x1
        return mantissa * 2.0**-52

    def rand_float(self) -> np.float32:
        """Uniform float32 in [0, 1) from the 23 low bits of one word (= 1.mantissa - 1.0f)."""
        return np.float32((self.rand32() & 0x7FFFFF) * 2.0**-23)

    def uniform32(self, n: int) -> int:
        """Exactly uniform integer in [0, n) from 32-bit words (§7.3)."""
        return _exact_uniform_int(n, 32, self.rand32)

    def uniform64(self, n: int) -> int:
        """Exactly uniform integer in [0, n) from 64-bit words built low word first (§7.3)."""
        return _exact_uniform_int(n, 64, self.rand64)


def _exact_uniform_int(n: int, bits: int, random_word: Callable[[], int]) -> int:
    if n & (n - 1) == 0:  # a power of two: mask
        return random_word() & (n - 1)
    # Reject the lowest ((2^bits - 1) mod n) + 1 values, which would bias towards 0.
    rejected = ((2**bits - 1) % n) + 1
    while True:
        word = random_word()
        if word >= rejected:
            return word % n


class GuardedPhiloxRandom:
    """The persistent generator of a sampler kernel.

    Every call takes a copy of the state as its local stream and advances the persistent
    state by ``ceil(samples32 / 4)`` blocks. The local stream may run past that reservation
    (TensorFlow's accepted "reused random bits").
    """

    def __init__(self, seed: int, seed2: int):
        if seed == 0 and seed2 == 0:  # nondeterministic, as TensorFlow's kernel does
            seed = secrets.randbits(64)
            seed2 = secrets.randbits(64)
        self.generator = PhiloxRandom(seed, seed2)

    def reserve_samples32(self, samples32: int) -> SimplePhilox:
        local = self.generator.copy()
        self.generator.skip((samples32 + 3) // 4)
        return SimplePhilox(local)


def seed_attributes(seed) -> tuple[int, int]:
    """The op attributes ``(seed, seed2)`` for a user seed (docs/api.md, §7.9).

    ``None`` -> (0, 0), i.e. nondeterministic; ``int s`` -> (87654321, s mod (2**31 - 1));
    a pair is used as is.
    """
    if seed is None:
        return (0, 0)
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed must be None, an int or a pair of ints, got a bool")
    if isinstance(seed, (int, np.integer)):
        return (_DEFAULT_GRAPH_SEED, int(seed) % _INT32_MAX)
    if isinstance(seed, (tuple, list)) and len(seed) == 2:
        pair = tuple(_check_int("seed", value) for value in seed)
        for value in pair:
            if not -(2**63) <= value < 2**64:
                raise ValueError(f"seed values must fit in 64 bits, got {value}")
        return pair  # type: ignore[return-value]
    raise TypeError(f"seed must be None, an int or a pair (seed, seed2), got {seed!r}")


# ---------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_int_array(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype not in (np.int32, np.int64):
        raise TypeError(f"{name} must be an int32 or int64 array, got dtype {array.dtype}")
    return array.astype(np.int64)


def _check_true_classes(true_classes, num_true: int) -> np.ndarray:
    true_classes = _check_int_array("true_classes", true_classes)
    if true_classes.ndim != 2:
        raise ValueError(
            f"true_classes must be a matrix [batch_size, num_true], got shape {true_classes.shape}"
        )
    if true_classes.shape[1] != num_true:
        raise ValueError(
            f"true_classes must have num_true columns: it has {true_classes.shape[1]}, "
            f"num_true is {num_true}"
        )
    return true_classes


# ---------------------------------------------------------------------------------------
# Candidate samplers (§7)
# ---------------------------------------------------------------------------------------


def expected_count(p, num_sampled: int, num_tries: int) -> np.float32:
    """Expected count of an id with probability ``p`` (§7.2), in float32 arithmetic.

    ``p * S`` when no draw was rejected (``num_tries == S``), else
    ``-expm1(num_tries * log1p(-p))``, every operation rounded to float32.
    """
    p = np.float32(p)
    if num_tries == num_sampled:
        return np.float32(p * np.float32(num_sampled))
    return np.float32(-_expm1f(np.float32(np.float32(num_tries) * _log1pf(-p))))


class _CandidateSampler:
    """What every sampler kernel does per call (§7.1, §7.2); subclasses give p(v) and draw()."""

    range_max: int | None

    def __init__(self, range_max: int, seed=None):
        self.range_max = _check_int("range_max", range_max, minimum=1)
        self._generator = GuardedPhiloxRandom(*seed_attributes(seed))

    # --- subclass hooks ---------------------------------------------------------------

    def _range(self, num_sampled: int) -> int:
        return self.range_max  # type: ignore[return-value]

    def _probability(self, value: int) -> np.float32:
        raise NotImplementedError

    def _draw(self, stream: SimplePhilox) -> int:
        raise NotImplementedError

    def _num_positive(self, num_sampled: int) -> int:
        """How many ids can be drawn at all."""
        return self._range(num_sampled)

    def _update(self, true_flat: np.ndarray) -> None:
        """Learn from the true classes after the call (learned unigram only)."""

    # --- public -----------------------------------------------------------------------

    def probability(self, ids) -> np.ndarray:
        """float32 p(v) for each id, same shape as ``ids``; 0 for ids outside the range."""
        ids = _check_int_array("ids", ids)
        out = np.zeros(ids.shape, dtype=np.float32)
        for position, value in np.ndenumerate(ids):
            if 0 <= value < self.range_max:
                out[position] = self._probability(int(value))
        return out

    def sample(self, true_classes, num_true, num_sampled, unique):
        """One kernel call: ``(sampled [S] int64, true_expected_count [B, T] float32,
        sampled_expected_count [S] float32)``."""
        num_true = _check_int("num_true", num_true, minimum=1)
        num_sampled = _check_int("num_sampled", num_sampled, minimum=1)
        unique = bool(unique)
        true_classes = _check_true_classes(true_classes, num_true)
        value_range = self._range(num_sampled)
        if unique and num_sampled > value_range:
            raise ValueError(
                f"Sampler's range is too small: num_sampled {num_sampled} > range_max "
                f"{value_range} with unique=True"
            )
        true_flat = true_classes.reshape(-1)
        out_of_range = (true_flat < 0) | (true_flat >= value_range)
        if out_of_range.any():
            raise IndexError(
                f"true_classes: `true_candidate` out of range [0, {value_range}), "
                f"received {true_flat[out_of_range][0]}"
            )
        if unique and self._num_positive(num_sampled) < num_sampled:
            raise ValueError(
                f"num_sampled {num_sampled} unique candidates requested but only "
                f"{self._num_positive(num_sampled)} ids have a nonzero probability "
                "(TensorFlow would loop until a CHECK failure)"
            )

        stream = self._generator.reserve_samples32(2048 * num_sampled)
        sampled, sampled_count, true_count = self._sample_and_count(
            stream, num_sampled, unique, true_flat
        )
        self._update(true_flat)
        return (
            np.asarray(sampled, dtype=np.int64),
            np.asarray(true_count, dtype=np.float32).reshape(true_classes.shape),
            np.asarray(sampled_count, dtype=np.float32),
        )

    def _sample_and_count(self, stream, num_sampled, unique, true_flat):
        sampled: list[int] = []
        if unique:
            seen = set()
            num_tries = 0
            while len(sampled) < num_sampled:
                num_tries += 1
                value = self._draw(stream)
                if value not in seen:
                    seen.add(value)
                    sampled.append(value)
        else:
            sampled = [self._draw(stream) for _ in range(num_sampled)]
            num_tries = num_sampled

        def count(value):
            return expected_count(self._probability(int(value)), num_sampled, num_tries)

        return sampled, [count(v) for v in sampled], [count(v) for v in true_flat]


class UniformSampler(_CandidateSampler):
    """p(v) = float32(1.0 / R); draw = exact uniform integer from 64-bit words (§7.3)."""

    def __init__(self, range_max, seed=None):
        super().__init__(range_max, seed)
        self._p = np.float32(1.0 / self.range_max)

    def _probability(self, value):
        return self._p

    def _draw(self, stream):
        return stream.uniform64(self.range_max)


class LogUniformSampler(_CandidateSampler):
    """p(v) = log((v+2)/(v+1)) / log1p(R) in double, cast to float32 (§7.5)."""

    def __init__(self, range_max, seed=None):
        super().__init__(range_max, seed)
        self._log_range = math.log1p(self.range_max)

    def _probability(self, value):
        return np.float32(math.log((value + 2.0) / (value + 1.0)) / self._log_range)

    def _draw(self, stream):
        value = int(math.exp(stream.rand_double() * self._log_range)) - 1
        return value % self.range_max


class LearnedUnigramSampler(_CandidateSampler):
    """Integer weights, all 1 at first, learned from the true classes of each call (§7.7)."""

    def __init__(self, range_max, seed=None):
        super().__init__(range_max, seed)
        if self.range_max >= _INT32_MAX:
            raise ValueError(f"range_max must be < 2**31 - 1, got {self.range_max}")
        self.weights = np.ones(self.range_max, dtype=np.int64)
        self.total_weight = self.range_max

    def _probability(self, value):
        return np.float32(self.weights[value]) / np.float32(self.total_weight)

    def _sample_and_count(self, stream, num_sampled, unique, true_flat):
        # The weights do not change during a call: one cumulative sum serves every draw.
        self._cumulative = np.cumsum(self.weights)
        return super()._sample_and_count(stream, num_sampled, unique, true_flat)

    def _draw(self, stream):
        position = stream.uniform32(self.total_weight)
        # The smallest v with position < cumsum(weights)[v].
        return int(np.searchsorted(self._cumulative, position, side="right"))

    def _update(self, true_flat):
        num_updates = min(len(true_flat), _INT32_MAX - self.total_weight)
        for value in true_flat[:num_updates]:
            self.weights[value] += 1
        self.total_weight += num_updates


class FixedUnigramSampler(_CandidateSampler):
    """Weights from ``unigrams`` or a vocabulary file, drawn with Walker's alias method (§7.6).

    Attributes: ``weights`` (float32 table, the sampler's local index space),
    ``total_weight`` (float32 running total), ``alias_prob`` (float32) and ``alias_index``.
    """

    def __init__(
        self,
        range_max,
        vocab_file="",
        distortion=1.0,
        num_reserved_ids=0,
        num_shards=1,
        shard=0,
        unigrams=(),
        seed=None,
    ):
        super().__init__(range_max, seed)
        num_reserved_ids = _check_int("num_reserved_ids", num_reserved_ids, minimum=0)
        num_shards = _check_int("num_shards", num_shards, minimum=1)
        shard = _check_int("shard", shard, minimum=0)
        distortion = np.float32(distortion)
        unigrams = [np.float32(u) for u in unigrams]
        if not vocab_file and not unigrams:
            raise ValueError("Must provide either vocab_file or unigrams.")
        if vocab_file and unigrams:
            raise ValueError("Must only provide one of vocab_file and unigrams.")
        if vocab_file:
            unigrams = _read_vocab_counts(vocab_file)

        weights: list[np.float32] = []
        for reserved_id in range(num_reserved_ids):
            if reserved_id % num_shards == shard:
                weights.append(np.float32(0.0))  # reserved ids: exactly 0, no distortion
        total = np.float32(0.0)
        # TensorFlow's quirk: the id counter restarts at the number of reserved ids kept
        # in this shard, not at num_reserved_ids.
        word_id = len(weights)
        for count in unigrams:
            if word_id % num_shards == shard:
                weight = _powf(count, distortion)
                total = np.float32(total + weight)
                weights.append(weight)
            word_id += 1

        if self.range_max != len(weights):
            raise ValueError(
                f"range_max is {self.range_max} but must be equal to the weights size "
                f"{len(weights)}"
            )
        self.weights = np.array(weights, dtype=np.float32)
        self.total_weight = total
        self.alias_prob, self.alias_index = _build_alias_table(self.weights)

    def _probability(self, value):
        return np.float32(self.weights[value] / self.total_weight)

    def _num_positive(self, num_sampled):
        return int(np.count_nonzero(self.weights > 0))

    def _draw(self, stream):
        r = stream.rand_float()
        index = stream.uniform32(len(self.weights))
        if r < self.alias_prob[index]:
            return index
        return int(self.alias_index[index])


def _read_vocab_counts(vocab_file: str) -> list[np.float32]:
    """The last comma-separated field of each non-empty line, as float32 (§7.6)."""
    with open(os.fspath(vocab_file), "rb") as handle:
        data = handle.read()
    counts = []
    for raw_line in data.split(b"\n"):
        line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
        if not line:
            continue  # empty lines are skipped and consume no id
        field = line.split(b",")[-1]
        try:
            counts.append(np.float32(float(field.decode("utf-8"))))
        except ValueError:
            raise ValueError(
                f"vocab_file: Wrong vocabulary format at line: {line.decode('utf-8', 'replace')}"
            ) from None
    return counts


def _build_alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table built exactly as TensorFlow's DistributionSampler does."""
    n = len(weights)
    total = 0.0
    for weight in weights:  # double accumulation of the float32 weights
        total += float(weight)
    alias = [-1] * n
    pr = []
    low: list[int] = []
    high: list[int] = []
    for i, weight in enumerate(weights):
        # C++: (weights[i] * n) / sum -- a float32 product, then a double division.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scaled = float(np.float32(weight * np.float32(n)))
        p = scaled / total if total != 0.0 else (math.nan if scaled == 0.0 else math.inf)
        pr.append(p)
        (low if p < 1.0 else high).append(i)
    while low and high:
        small = low.pop()
        large = high.pop()
        alias[small] = large
        pr[large] = pr[large] - (1.0 - pr[small])
        (low if pr[large] < 1.0 else high).append(large)
    prob = np.array(pr, dtype=np.float64).astype(np.float32)
    for leftover in high + low:  # rounding leftovers: always themselves
        prob[leftover] = np.float32(1.0)
        alias[leftover] = leftover
    return prob, np.array(alias, dtype=np.int64)


class AllCandidateSampler(_CandidateSampler):
    """Returns [0, S) with every expected count 1.0; ``unique`` is ignored (§7.4)."""

    def __init__(self, seed=None):
        self.range_max = None
        self._generator = GuardedPhiloxRandom(*seed_attributes(seed))

    def _range(self, num_sampled):
        return num_sampled

    def probability(self, ids) -> np.ndarray:
        """1.0 for every id (the sampler has no per-draw probability; its counts are all 1)."""
        ids = _check_int_array("ids", ids)
        return np.ones(ids.shape, dtype=np.float32)

    def sample(self, true_classes, num_true, num_sampled, unique):
        return super().sample(true_classes, num_true, num_sampled, False)

    def _sample_and_count(self, stream, num_sampled, unique, true_flat):
        return list(range(num_sampled)), [1.0] * num_sampled, [1.0] * len(true_flat)


# --- module-level functions with TensorFlow's kernel cache ----------------------------

_SAMPLER_CACHE: dict[tuple, _CandidateSampler] = {}


def reset_sampler_cache() -> None:
    """Forget every cached sampler kernel (random streams and learned counts)."""
    _SAMPLER_CACHE.clear()


def _cached_sample(config, make_sampler, true_classes, num_true, num_sampled, unique, seed):
    num_true = _check_int("num_true", num_true, minimum=1)
    num_sampled = _check_int("num_sampled", num_sampled, minimum=1)
    attributes = seed_attributes(seed)
    key = config + (num_true, num_sampled, bool(unique), attributes)
    sampler = _SAMPLER_CACHE.get(key)
    if sampler is None:
        sampler = make_sampler(attributes)
        _SAMPLER_CACHE[key] = sampler
    return sampler.sample(true_classes, num_true, num_sampled, unique)


def uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, seed=None):
    range_max = _check_int("range_max", range_max, minimum=1)
    return _cached_sample(
        ("uniform", range_max),
        lambda s: UniformSampler(range_max, seed=s),
        true_classes,
        num_true,
        num_sampled,
        unique,
        seed,
    )


def log_uniform_candidate_sampler(
    true_classes, num_true, num_sampled, unique, range_max, seed=None
):
    range_max = _check_int("range_max", range_max, minimum=1)
    return _cached_sample(
        ("log_uniform", range_max),
        lambda s: LogUniformSampler(range_max, seed=s),
        true_classes,
        num_true,
        num_sampled,
        unique,
        seed,
    )


def learned_unigram_candidate_sampler(
    true_classes, num_true, num_sampled, unique, range_max, seed=None
):
    range_max = _check_int("range_max", range_max, minimum=1)
    return _cached_sample(
        ("learned_unigram", range_max),
        lambda s: LearnedUnigramSampler(range_max, seed=s),
        true_classes,
        num_true,
        num_sampled,
        unique,
        seed,
    )


def fixed_unigram_candidate_sampler(
    true_classes,
    num_true,
    num_sampled,
    unique,
    range_max,
    vocab_file="",
    distortion=1.0,
    num_reserved_ids=0,
    num_shards=1,
    shard=0,
    unigrams=(),
    seed=None,
):
    range_max = _check_int("range_max", range_max, minimum=1)
    config = (
        "fixed_unigram",
        range_max,
        os.fspath(vocab_file),
        float(np.float32(distortion)),
        num_reserved_ids,
        num_shards,
        shard,
        tuple(float(np.float32(u)) for u in unigrams),
    )
    return _cached_sample(
        config,
        lambda s: FixedUnigramSampler(
            range_max,
            vocab_file,
            distortion,
            num_reserved_ids,
            num_shards,
            shard,
            unigrams,
            seed=s,
        ),
        true_classes,
        num_true,
        num_sampled,
        unique,
        seed,
    )


def all_candidate_sampler(true_classes, num_true, num_sampled, unique, seed=None):
    return _cached_sample(
        ("all",),
        lambda s: AllCandidateSampler(seed=s),
        true_classes,
        num_true,
        num_sampled,
        unique,
        seed,
    )


# ---------------------------------------------------------------------------------------
# Accidental hits (§8)
# ---------------------------------------------------------------------------------------


def compute_accidental_hits(true_classes, sampled_candidates, num_true):
    """``(indices int32 [H], ids int64 [H], weights float32 [H])``: row i, position in
    ``sampled_candidates`` (the last one for duplicates) and -FLT_MAX for every hit."""
    num_true = _check_int("num_true", num_true, minimum=1)
    true_classes = _check_int_array("true_classes", true_classes)
    if true_classes.ndim != 2 or true_classes.shape[1] != num_true:
        raise ValueError(
            "true_classes (true_candidates) must be a batch_size * num_true matrix, "
            f"got shape {true_classes.shape} with num_true {num_true}"
        )
    sampled_candidates = _check_int_array("sampled_candidates", sampled_candidates)
    if sampled_candidates.ndim != 1:
        raise ValueError(
            f"sampled_candidates must be a vector, got shape {sampled_candidates.shape}"
        )
    position_of = {}
    for position, value in enumerate(sampled_candidates.tolist()):
        position_of[value] = position  # later duplicates overwrite: the last position wins
    indices, ids = [], []
    for row in range(true_classes.shape[0]):
        for value in true_classes[row].tolist():
            if value in position_of:
                indices.append(row)
                ids.append(position_of[value])
    return (
        np.array(indices, dtype=np.int32),
        np.array(ids, dtype=np.int64),
        np.full(len(indices), -FLT_MAX, dtype=np.float32),
    )


# ---------------------------------------------------------------------------------------
# Sharded lookup (§9)
# ---------------------------------------------------------------------------------------


def partition_ids(ids, shard_sizes: Sequence[int], partition_strategy: str = "div"):
    """``(shard, row)`` arrays for each id, for shards of the given sizes.

    Raises ValueError if the sizes do not follow the strategy's layout and IndexError for
    ids outside ``[0, sum(shard_sizes))``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    sizes = [int(size) for size in shard_sizes]
    num_shards = len(sizes)
    total = sum(sizes)
    if partition_strategy == "div":
        q, extras = divmod(total, num_shards)
        if q == 0:
            raise ValueError(
                f"params: 'div' needs at least one row per shard, got {total} rows in "
                f"{num_shards} shards (TensorFlow fails with a division by zero)"
            )
        expected = [q + 1] * extras + [q] * (num_shards - extras)
    elif partition_strategy == "mod":
        expected = [len(range(p, total, num_shards)) for p in range(num_shards)]
    else:
        raise ValueError(f"partition_strategy must be 'div' or 'mod', got {partition_strategy!r}")
    if sizes != expected:
        raise ValueError(
            f"params: shard sizes {sizes} do not follow the {partition_strategy!r} layout "
            f"of {total} rows, which is {expected}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= total):
        bad = ids[(ids < 0) | (ids >= total)][0]
        raise IndexError(f"ids: id {bad} is out of range [0, {total})")
    if partition_strategy == "mod":
        return ids % num_shards, ids // num_shards
    # The formula TensorFlow uses (floor divisions), equal to the contiguous layout.
    shard = np.maximum(ids // (q + 1), (ids - extras) // q)
    row = np.where(shard < extras, ids % (q + 1), (ids - extras) % q)
    return shard, row


def _as_shards(params, name: str) -> list[np.ndarray]:
    shards = list(params) if isinstance(params, (list, tuple)) else [params]
    shards = [np.asarray(shard) for shard in shards]
    if not shards:
        raise ValueError(f"{name} must not be an empty list")
    for shard in shards:
        if shard.ndim == 0:
            raise ValueError(f"{name}: every shard needs at least one dimension")
        if shard.shape[1:] != shards[0].shape[1:]:
            raise ValueError(f"{name}: shards have different row shapes")
        if shard.dtype != shards[0].dtype:
            raise TypeError(f"{name}: shards have different dtypes")
    return shards


def embedding_lookup(params, ids, partition_strategy="div"):
    """``params[ids]`` where ``params`` is an array or a list of shards laid out by
    ``partition_strategy`` ("div": contiguous, "mod": strided)."""
    shards = _as_shards(params, "params")
    ids = _check_int_array("ids", ids)
    if partition_strategy not in ("div", "mod"):
        raise ValueError(f"partition_strategy must be 'div' or 'mod', got {partition_strategy!r}")
    if len(shards) == 1:
        full = shards[0]
        if ids.size and (ids.min() < 0 or ids.max() >= full.shape[0]):
            bad = ids[(ids < 0) | (ids >= full.shape[0])][0]
            raise IndexError(f"ids: id {bad} is out of range [0, {full.shape[0]})")
        return full[ids]
    shard_of, row_of = partition_ids(ids, [s.shape[0] for s in shards], partition_strategy)
    out = np.empty(ids.shape + shards[0].shape[1:], dtype=shards[0].dtype)
    for p, shard in enumerate(shards):
        chosen = shard_of == p
        out[chosen] = shard[row_of[chosen]]
    return out


# ---------------------------------------------------------------------------------------
# Sampled logits and losses (§2-§4)
# ---------------------------------------------------------------------------------------


def _check_inputs(inputs) -> np.ndarray:
    inputs = np.asarray(inputs)
    if inputs.dtype not in (np.float32, np.float64):
        raise TypeError(f"inputs must be float32 or float64, got dtype {inputs.dtype}")
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be a matrix [batch_size, dim], got shape {inputs.shape}")
    return inputs


def _check_params(params, name, dtype, ndim, dim=None) -> list[np.ndarray]:
    shards = _as_shards(params, name)
    for shard in shards:
        if shard.dtype != dtype:
            raise TypeError(f"{name} must have the dtype of inputs ({dtype}), got {shard.dtype}")
        if shard.ndim != ndim:
            raise ValueError(f"{name} shards must have {ndim} dimension(s), got {shard.shape}")
        if dim is not None and shard.shape[1] != dim:
            raise ValueError(f"{name} shards must have {dim} columns, got {shard.shape}")
    return shards


def _check_labels(labels, num_true: int, batch_size: int) -> np.ndarray:
    labels = _check_int_array("labels", labels)
    if labels.ndim != 2 or labels.shape[1] != num_true:
        raise ValueError(
            f"labels must be a matrix [batch_size, num_true={num_true}], got shape {labels.shape}"
        )
    if labels.shape[0] != batch_size:
        raise ValueError(f"labels has {labels.shape[0]} rows but inputs has {batch_size}")
    return labels


def unpack_sampled_values(sampled_values):
    """The triple out of ``sampled_values``: ``TypeError`` if it is not a sequence,
    ``ValueError`` if it has another length (as Python's, hence TensorFlow's, unpacking)."""
    if isinstance(sampled_values, (str, bytes)) or not hasattr(sampled_values, "__iter__"):
        raise TypeError(f"sampled_values must be a triple, got {type(sampled_values).__name__}")
    items = tuple(sampled_values)
    if len(items) != 3:
        raise ValueError(f"sampled_values must be a triple, got {len(items)} item(s)")
    return items


def _broadcast_counts(counts, shape, name) -> np.ndarray:
    counts = np.asarray(counts)
    try:
        fits = counts.ndim <= 2 and np.broadcast_shapes(counts.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name} of shape {counts.shape} does not broadcast to {shape}")
    return np.broadcast_to(counts, shape)


def _forward(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true,
    sampled_values,
    subtract_log_q,
    remove_accidental_hits,
    partition_strategy,
    seed,
) -> SimpleNamespace:
    """Everything ``_compute_sampled_logits`` computes, kept for the gradients."""
    inputs = _check_inputs(inputs)
    dtype = inputs.dtype
    batch_size, dim = inputs.shape
    num_true = _check_int("num_true", num_true, minimum=1)
    weight_shards = _check_params(weights, "weights", dtype, ndim=2, dim=dim)
    bias_shards = _check_params(biases, "biases", dtype, ndim=1)
    labels = _check_labels(labels, num_true, batch_size)
    if partition_strategy not in ("div", "mod"):
        raise ValueError(f"partition_strategy must be 'div' or 'mod', got {partition_strategy!r}")

    # Step 2: one sampled set for the whole batch.
    if sampled_values is None:
        sampled, true_count, sampled_count = log_uniform_candidate_sampler(
            labels, num_true, num_sampled, True, num_classes, seed
        )
    else:
        sampled, true_count, sampled_count = unpack_sampled_values(sampled_values)
        sampled = _check_int_array("sampled_values", sampled)
        if sampled.ndim != 1:
            raise ValueError(
                f"sampled_values: sampled candidates must be a vector, got {sampled.shape}"
            )
    # The candidates' own length is the number sampled; num_sampled only sizes the hit mask.
    num_candidates = sampled.shape[0]
    if remove_accidental_hits and num_candidates != num_sampled:
        raise ValueError(
            f"num_sampled ({num_sampled}) must equal len(sampled_values[0]) ({num_candidates}) "
            "when accidental hits are removed"
        )
    if subtract_log_q:
        # Subtracted from [B, T] and [B, S] logits: counts broadcast to those shapes (and may
        # not widen them). Converted to the dtype of the logits before the log.
        true_count = _broadcast_counts(
            true_count, (batch_size, num_true), "sampled_values[1] (true_expected_count)"
        ).astype(dtype)
        sampled_count = _broadcast_counts(
            sampled_count,
            (batch_size, num_candidates),
            "sampled_values[2] (sampled_expected_count)",
        ).astype(dtype)

    # Steps 1, 3, 4, 6: gather the rows of every label and every sampled id.
    num_true_rows = batch_size * num_true
    all_ids = np.concatenate([labels.reshape(-1), sampled]).astype(np.int64)
    all_w = embedding_lookup(weight_shards, all_ids, partition_strategy)
    all_b = embedding_lookup(bias_shards, all_ids, partition_strategy)
    true_w = all_w[:num_true_rows].reshape(batch_size, num_true, dim)
    sampled_w = all_w[num_true_rows:]
    true_b = all_b[:num_true_rows].reshape(batch_size, num_true)
    sampled_b = all_b[num_true_rows:]

    # Steps 5, 7, 8: dot products and biases.
    true_logits = (inputs[:, None, :] * true_w).sum(axis=2) + true_b
    sampled_logits = inputs @ sampled_w.T + sampled_b

    # Step 9: -FLT_MAX assigned (not summed) on the hits, then added to the logits.
    if remove_accidental_hits:
        rows, positions, mask_values = compute_accidental_hits(labels, sampled, num_true)
        mask = np.zeros((batch_size, num_candidates), dtype=dtype)
        mask[rows, positions] = mask_values.astype(dtype)
        sampled_logits = sampled_logits + mask

    # Step 10: subtract log Q, after the mask.
    if subtract_log_q:
        with np.errstate(divide="ignore", invalid="ignore"):
            true_logits = true_logits - np.log(true_count)
            sampled_logits = sampled_logits - np.log(sampled_count)

    # Step 11: true columns first, targets 1/T.
    forward = SimpleNamespace()
    forward.logits = np.concatenate([true_logits, sampled_logits], axis=1).astype(dtype)
    forward.targets = np.concatenate(
        [
            np.ones((batch_size, num_true), dtype=dtype) / dtype.type(num_true),
            np.zeros((batch_size, num_candidates), dtype=dtype),
        ],
        axis=1,
    )
    forward.inputs = inputs
    forward.num_true = num_true
    forward.sampled = sampled
    forward.all_ids = all_ids
    forward.true_w = true_w
    forward.sampled_w = sampled_w
    forward.weight_shards = weight_shards
    forward.bias_shards = bias_shards
    return forward


def compute_sampled_logits(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    subtract_log_q=True,
    remove_accidental_hits=False,
    partition_strategy="div",
    seed=None,
):
    """``(logits [B, T+S], targets [B, T+S])`` as TensorFlow's ``_compute_sampled_logits``."""
    forward = _forward(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        subtract_log_q,
        remove_accidental_hits,
        partition_strategy,
        seed,
    )
    return forward.logits, forward.targets


def _sigmoid_cross_entropy(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``max(z, 0) - z*y + log1p(exp(-|z|))`` with TensorFlow's select on ``z >= 0``."""
    nonnegative = z >= 0
    relu = np.where(nonnegative, z, np.zeros_like(z))
    neg_abs = np.where(nonnegative, -z, z)
    with np.errstate(invalid="ignore"):
        return relu - z * y + np.log1p(np.exp(neg_abs))


def _softmax_cross_entropy(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``-sum_c y_c * log_softmax(z)_c`` per row, with the row maximum subtracted."""
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = z - z.max(axis=1, keepdims=True)
        log_sum_exp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return (y * (log_sum_exp - shifted)).sum(axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(z >= 0, 1 / (1 + np.exp(-z)), np.exp(z) / (1 + np.exp(z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def nce_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=False,
    partition_strategy="div",
    seed=None,
    subtract_log_q=True,
):
    """Per-example NCE loss [B]: sigmoid cross-entropy summed over the T+S columns (§3)."""
    logits, targets = compute_sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        subtract_log_q,
        remove_accidental_hits,
        partition_strategy,
        seed,
    )
    return _sigmoid_cross_entropy(logits, targets).sum(axis=1)


def sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=True,
    partition_strategy="div",
    seed=None,
    subtract_log_q=True,
):
    """Per-example sampled softmax loss [B]: softmax cross-entropy over the T+S columns (§4)."""
    logits, targets = compute_sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        subtract_log_q,
        remove_accidental_hits,
        partition_strategy,
        seed,
    )
    return _softmax_cross_entropy(logits, targets)


def _full_logits_and_targets(
    weights, biases, labels, inputs, num_classes, num_true, partition_strategy
):
    inputs = _check_inputs(inputs)
    dtype = inputs.dtype
    batch_size, dim = inputs.shape
    num_classes = _check_int("num_classes", num_classes, minimum=1)
    num_true = _check_int("num_true", num_true, minimum=1)
    weight_shards = _check_params(weights, "weights", dtype, ndim=2, dim=dim)
    bias_shards = _check_params(biases, "biases", dtype, ndim=1)
    labels = _check_labels(labels, num_true, batch_size)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise IndexError(f"labels must be in [0, num_classes={num_classes})")
    class_ids = np.arange(num_classes, dtype=np.int64)
    full_w = embedding_lookup(weight_shards, class_ids, partition_strategy)
    full_b = embedding_lookup(bias_shards, class_ids, partition_strategy)
    logits = inputs @ full_w.T + full_b
    counts = np.zeros((batch_size, num_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(batch_size), num_true), labels.reshape(-1)), 1)
    targets = counts.astype(dtype) / dtype.type(num_true)
    return logits, targets


def full_sigmoid_loss(
    weights, biases, labels, inputs, num_classes, num_true=1, partition_strategy="div"
):
    """Sigmoid cross-entropy over all C classes, targets count/T, summed per example [B]."""
    logits, targets = _full_logits_and_targets(
        weights, biases, labels, inputs, num_classes, num_true, partition_strategy
    )
    return _sigmoid_cross_entropy(logits, targets).sum(axis=1)


def full_softmax_loss(
    weights, biases, labels, inputs, num_classes, num_true=1, partition_strategy="div"
):
    """``-sum_c y[i, c] * log_softmax(inputs @ W[:C].T + b[:C])[i, c]`` per example [B]."""
    logits, targets = _full_logits_and_targets(
        weights, biases, labels, inputs, num_classes, num_true, partition_strategy
    )
    return _softmax_cross_entropy(logits, targets)


# ---------------------------------------------------------------------------------------
# Gradients (§6)
# ---------------------------------------------------------------------------------------


def _shard_gradients(shards, all_ids, values, partition_strategy):
    """Per shard: (shard-local row indices, values) in the order the ids occur in all_ids."""
    shard_of, row_of = partition_ids(all_ids, [s.shape[0] for s in shards], partition_strategy)
    result = []
    for p in range(len(shards)):
        positions = np.nonzero(shard_of == p)[0]
        result.append((row_of[positions].astype(np.int64), values[positions]))
    return result


def _loss_and_gradients(
    kind,
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true,
    sampled_values,
    remove_accidental_hits,
    partition_strategy,
    seed,
    subtract_log_q,
    upstream,
):
    forward = _forward(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        subtract_log_q,
        remove_accidental_hits,
        partition_strategy,
        seed,
    )
    z, y = forward.logits, forward.targets
    x = forward.inputs
    dtype = x.dtype
    batch_size, dim = x.shape
    t = forward.num_true
    if kind == "nce":
        loss = _sigmoid_cross_entropy(z, y).sum(axis=1)
        p = _sigmoid(z)
    else:
        loss = _softmax_cross_entropy(z, y)
        p = _softmax(z)
    if upstream is None:
        g = np.ones(batch_size, dtype=dtype)
    else:
        g = np.asarray(upstream).astype(dtype)
        if g.shape != (batch_size,):
            raise ValueError(f"upstream must have shape [{batch_size}], got {g.shape}")

    # G[i, c] = g_i * (p[i, c] - y[i, c]) is the gradient with respect to logit (i, c).
    grad = g[:, None] * (p - y)
    grad_true = grad[:, :t]  # [B, T]
    grad_sampled = grad[:, t:]  # [B, S]

    # One row per entry of all_ids: G[i, t] * x_i for the labels, sum_i G[i, T+k] * x_i for
    # the sampled ids.
    true_rows = (grad_true[:, :, None] * x[:, None, :]).reshape(batch_size * t, dim)
    sampled_rows = grad_sampled.T @ x
    weight_values = np.concatenate([true_rows, sampled_rows], axis=0)
    bias_values = np.concatenate([grad_true.reshape(-1), grad_sampled.sum(axis=0)])
    # dL/dx_i = sum_t G[i, t] W[l_it] + sum_k G[i, T+k] W[s_k]
    from_labels = (grad_true[:, :, None] * forward.true_w).sum(axis=1)
    inputs_grad = from_labels + grad_sampled @ forward.sampled_w

    result = {
        "loss": loss,
        "logits": z,
        "targets": y,
        "sampled_candidates": forward.sampled,
        "weight_indices": forward.all_ids,
        "weight_values": weight_values.astype(dtype),
        "bias_values": bias_values.astype(dtype),
        "inputs_grad": inputs_grad.astype(dtype),
    }
    if len(forward.weight_shards) > 1:
        result["shard_weight_gradients"] = _shard_gradients(
            forward.weight_shards, forward.all_ids, result["weight_values"], partition_strategy
        )
    if len(forward.bias_shards) > 1:
        result["shard_bias_gradients"] = _shard_gradients(
            forward.bias_shards, forward.all_ids, result["bias_values"], partition_strategy
        )
    return result


def nce_loss_and_gradients(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=False,
    partition_strategy="div",
    seed=None,
    subtract_log_q=True,
    upstream=None,
):
    """``nce_loss`` and its gradients (§6) for upstream gradients ``g`` [B] (None: ones).

    Returns a dict: "loss" [B], "logits", "targets", "sampled_candidates",
    "weight_indices" (all_ids, duplicates kept), "weight_values" [B*T+S, D],
    "bias_values" [B*T+S], "inputs_grad" [B, D], and for sharded weights (biases)
    "shard_weight_gradients" ("shard_bias_gradients"): a list of (local_indices, values).
    """
    return _loss_and_gradients(
        "nce",
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
        upstream,
    )


def sampled_softmax_loss_and_gradients(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_classes,
    num_true=1,
    sampled_values=None,
    remove_accidental_hits=True,
    partition_strategy="div",
    seed=None,
    subtract_log_q=True,
    upstream=None,
):
    """``sampled_softmax_loss`` and its gradients; same dict as ``nce_loss_and_gradients``."""
    return _loss_and_gradients(
        "softmax",
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
        upstream,
    )
