"""Normalising Python arguments before they reach the extension: arrays of the right kind,
lists of shards, ints, floats, bools and strings, for the functions that still check in Python
(the samplers, ``embedding_lookup``, the full losses, ``accumulate``, ``skipgram_sgd_step``).
The sampled losses check their arguments in the extension (``src/py/arguments.rs``), with the
same messages. Every error names the argument as the user passed it (``weights`` for one
array, ``weights[1]`` for the second shard of a list) and says what was expected. See the
"Errors" section of ``docs/api.md``."""

from __future__ import annotations

import operator
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

MAX_COUNT = 2**31 - 1
"""TensorFlow's int32 range for ``num_sampled``, ``num_true`` and the unigram tables."""

MAX_INT64 = 2**63 - 1

MEMORY_PROBE_BYTES = 1 << 30
"""Working memory from which a call first checks that the operating system will provide it
(a refused allocation inside the Rust core would abort the process)."""


def _type_name(value: Any) -> str:
    return type(value).__name__


def as_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer argument (Python int or NumPy integer; not a float or bool), optionally
    within ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got a bool ({value!r})")
    try:
        result = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {_type_name(value)} ({value!r})") from None
    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {result}")
    if maximum is not None and result > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {result}")
    return result


def as_count(value: Any, name: str) -> int:
    """``num_sampled``/``num_true``: an int in ``[1, 2**31 - 1]`` (TensorFlow's int32 range;
    anything larger could only exhaust memory)."""
    return as_int(value, name, 1, MAX_COUNT)


def as_bool(value: Any, name: str) -> bool:
    """A Python or NumPy bool; ints are refused (``unique=1`` is almost always a slip)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {_type_name(value)} ({value!r})")


def as_float(value: Any, name: str, finite: bool = False) -> float:
    """A real number (Python or NumPy int or float, not a bool or a string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number, got {_type_name(value)} ({value!r})")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large for a float: {value}") from None
    if finite and not np.isfinite(result):
        raise ValueError(f"{name} must be finite, got {result}")
    return result


def as_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of a few strings, e.g. ``partition_strategy``."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {_type_name(value)}"
        )
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def as_path(value: Any, name: str) -> str:
    """A file path (``str``, ``bytes`` or ``os.PathLike``) as ``str``; ``""`` for none."""
    try:
        path = os.fspath(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a path (str, bytes or os.PathLike), got {_type_name(value)}"
        ) from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if "\0" in path:
        raise ValueError(f"{name} must not contain a NUL character: {path!r}")
    return path


def as_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray``, with a ragged or otherwise unconvertible value named."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} cannot be made into an array: {error}") from None


def as_class_matrix(value: Any, name: str) -> np.ndarray:
    """Class ids `[batch, num_true]`: int32 and int64 are read in place; other integer types
    are widened to int64; floats are refused (TensorFlow would truncate them silently)."""
    array = as_array(value, name)
    if array.dtype.kind not in "iu":
        if array.size == 0 and array.dtype.kind == "f":
            array = array.astype(np.int64)
        else:
            raise TypeError(
                f"{name} must hold integer class ids (int32 or int64), got dtype {array.dtype}"
                + ("; TensorFlow would truncate floats silently" if array.dtype.kind == "f" else "")
            )
    if array.ndim != 2:
        raise ValueError(f"{name} must be a matrix [batch_size, num_true], got shape {array.shape}")
    if array.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        array = _widen_ids(array, name)
    return array


def as_id_vector(value: Any, name: str) -> np.ndarray:
    """A 1-D vector of int64 ids."""
    array = as_array(value, name)
    if array.dtype.kind not in "iu":
        if not (array.size == 0 and array.dtype.kind == "f"):
            raise TypeError(f"{name} must hold integer ids, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be a vector, got shape {array.shape}")
    return _widen_ids(array, name) if array.dtype != np.int64 else array


def _widen_ids(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind == "u" and array.size and array.max() > MAX_INT64:
        raise IndexError(f"{name}: id {array.max()} does not fit in int64")
    return array.astype(np.int64)


def check_id_range(ids: np.ndarray, name: str, limit: int, what: str) -> None:
    """Every id in ``[0, limit)``, else ``IndexError`` naming the first offending id."""
    if ids.size == 0:
        return
    low, high = ids.min(), ids.max()
    if low < 0 or high >= limit:
        bad = low if low < 0 else high
        raise IndexError(f"{name}: id {bad} is out of range [0, {what} = {limit})")


def unpack_sampled_values(value: Any) -> tuple[Any, Any, Any]:
    """``(sampled_candidates, true_expected_count, sampled_expected_count)`` out of
    ``sampled_values``, refused as TensorFlow's unpacking refuses it: ``TypeError`` for
    something that is not a sequence, ``ValueError`` for a sequence of another length."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            "sampled_values must be a triple (sampled_candidates, true_expected_count, "
            f"sampled_expected_count), got {_type_name(value)}"
        )
    items = tuple(value)
    if len(items) != 3:
        raise ValueError(
            "sampled_values must be a triple (sampled_candidates, true_expected_count, "
            f"sampled_expected_count), got {len(items)} item(s)"
        )
    return items[0], items[1], items[2]


def as_float_array(value: Any, name: str, ndim: int) -> np.ndarray:
    array = as_array(value, name)
    if array.dtype not in FLOAT_DTYPES:
        hint = ""
        if array.dtype.kind == "f" and array.dtype.itemsize in (4, 8):
            hint = " (non-native byte order: convert with .astype(np.float32) or np.float64)"
        raise TypeError(f"{name} must be float32 or float64, got dtype {array.dtype}{hint}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    return array


def shard_label(name: str, position: int, count: int) -> str:
    """``weights`` for a single array, ``weights[1]`` for the second of a list of shards."""
    return name if count == 1 else f"{name}[{position}]"


def as_shards(value: Any, name: str, ndim: int, dtype: np.dtype) -> list[np.ndarray]:
    """A single array or a list of shards, each of `dtype` (never converted: the weights are
    read in place, so a different dtype is an error)."""
    shards = list(value) if isinstance(value, (list, tuple)) else [value]
    if not shards:
        raise ValueError(f"{name} must be an array or a non-empty list of shards")
    arrays = []
    for position, shard in enumerate(shards):
        label = shard_label(name, position, len(shards))
        array = as_float_array(shard, label, ndim)
        if array.dtype != dtype:
            raise TypeError(
                f"{label} has dtype {array.dtype} but inputs have dtype {dtype}; "
                "rustnce reads weights and biases in place and does not cast them"
            )
        arrays.append(array)
    return arrays


def as_bias_shards(value: Any, dtype: np.dtype, name: str = "biases") -> list[np.ndarray]:
    """Bias shards as `[rows, 1]` views, the shape the extension expects."""
    return [shard[:, None] for shard in as_shards(value, name, 1, dtype)]


def shard_sizes(rows: int, count: int) -> list[int]:
    """The rows each of `count` shards holds under both partition strategies: the first
    ``rows mod count`` shards one more (docs/semantics.md §9)."""
    return [rows // count + (1 if p < rows % count else 0) for p in range(count)]


def check_shard_layout(shards: Sequence[np.ndarray], name: str, partition_strategy: str) -> int:
    """Shards that follow the partition strategy (every shard non-empty, sizes ``q+1`` then
    ``q``) and agree on their trailing shape; returns the total number of rows."""
    rows = sum(shard.shape[0] for shard in shards)
    count = len(shards)
    if count > 1:
        if rows < count:
            raise ValueError(
                f"{name}: {count} shards hold only {rows} rows in total; every shard needs "
                "at least one row (TensorFlow divides by zero here)"
            )
        sizes = [shard.shape[0] for shard in shards]
        wanted = shard_sizes(rows, count)
        if sizes != wanted:
            raise ValueError(
                f"{name}: shard sizes {sizes} do not follow partition_strategy "
                f"{partition_strategy!r}: {rows} rows over {count} shards must be split {wanted} "
                "(TensorFlow would read wrong rows or fail)"
            )
        trailing = shards[0].shape[1:]
        for position, shard in enumerate(shards):
            if shard.shape[1:] != trailing:
                raise ValueError(
                    f"{name}[{position}] has shape {shard.shape} but {name}[0] has "
                    f"{shards[0].shape}: all shards must agree on everything but their rows"
                )
    return rows


def as_unigrams(value: Any, name: str = "unigrams") -> np.ndarray:
    """Counts as float32 (as TensorFlow's ``unigrams`` attribute holds them)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of counts, got {_type_name(value)}")
    array = as_array(value, name)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real counts, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be a list of counts, got shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(np.float32)


def check_in_place_targets(value: Any, name: str) -> None:
    """An in-place target (or each of its shards) must be a NumPy array: anything else would
    be converted to a temporary copy, and the update silently lost."""
    shards = list(value) if isinstance(value, (list, tuple)) else [value]
    for position, shard in enumerate(shards):
        if not isinstance(shard, np.ndarray):
            label = shard_label(name, position, len(shards))
            raise TypeError(
                f"{label} must be a NumPy array, because it is updated in place (a "
                f"{_type_name(shard)} would be copied and the update lost)"
            )


def check_writeable(arrays: Sequence[np.ndarray], name: str) -> None:
    """In-place targets must be writeable."""
    for position, array in enumerate(arrays):
        if not array.flags.writeable:
            label = shard_label(name, position, len(arrays))
            raise ValueError(
                f"{label} is read-only, but it is updated in place; pass a writeable array"
            )


def check_no_self_overlap(arrays: Sequence[np.ndarray], name: str) -> None:
    """An in-place target whose strides make two elements share memory (an ``as_strided``
    view) would be written from several threads at once: refused. Conservative: strides that
    do not visibly keep elements apart are refused too."""
    for position, array in enumerate(arrays):
        if array.size <= 1:
            continue
        extent = array.itemsize
        axes = [(abs(s), n) for s, n in zip(array.strides, array.shape) if n > 1]
        for stride, length in sorted(axes):
            if stride < extent:
                label = shard_label(name, position, len(arrays))
                raise ValueError(
                    f"{label} has strides {array.strides} under which elements share memory, "
                    "but it is updated in place; pass a copy"
                )
            extent = stride * (length - 1) + extent


def _available_memory() -> int | None:
    """What the operating system can still give this process without swapping it out or
    killing it: ``MemAvailable + SwapFree`` on Linux, capped by a cgroup v2 memory limit;
    None where that is unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        available = (
            int(fields["MemAvailable"].split()[0]) + int(fields.get("SwapFree", "0 kB").split()[0])
        ) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as handle:
            limit = handle.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as handle:
            used = int(handle.read().strip())
        if limit != "max":
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available


def check_memory(nbytes: int, what: str) -> None:
    """Refuses with ``MemoryError`` a call whose working memory the operating system will not
    provide — more than the memory available, or an allocation it refuses — before the Rust
    core would abort on the failed allocation (or the kernel's out-of-memory killer would end
    the process). Calls below ``MEMORY_PROBE_BYTES`` are not checked."""
    if nbytes < MEMORY_PROBE_BYTES:
        return
    gib = f"{nbytes / 2**30:.1f} GiB"
    if nbytes > sys.maxsize:
        raise MemoryError(f"{what} would need {nbytes} bytes, more than a process can address")
    available = _available_memory()
    if available is not None and nbytes > available:
        raise MemoryError(
            f"{what} would need {nbytes} bytes ({gib}) but only {available} bytes "
            f"({available / 2**30:.1f} GiB) of memory are available"
        )
    try:
        probe = np.empty(nbytes, dtype=np.uint8)
    except (MemoryError, ValueError):
        raise MemoryError(
            f"{what} would need {nbytes} bytes ({gib}), which the operating system refuses"
        ) from None
    del probe
