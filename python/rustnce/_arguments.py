"""Normalising Python arguments before they reach the extension: arrays of the right kind,
lists of shards, ints and bools. Every error names the argument."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_int(value: Any, name: str) -> int:
    """An integer argument (Python int or NumPy integer; not a float or bool)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def as_class_matrix(value: Any, name: str) -> np.ndarray:
    """Class ids `[batch, num_true]`: int32 and int64 are read in place; other integer types
    are widened to int64; floats are refused (TensorFlow would truncate them silently)."""
    array = np.asarray(value)
    if array.dtype.kind == "b" or array.dtype.kind not in "iu":
        if array.size == 0 and array.dtype.kind == "f":
            array = array.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be a matrix [batch_size, num_true], got shape {array.shape}")
    if array.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        array = _widen_ids(array, name)
    return array


def as_id_vector(value: Any, name: str) -> np.ndarray:
    """A 1-D vector of int64 ids."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu" or array.dtype.kind == "b":
        if not (array.size == 0 and array.dtype.kind == "f"):
            raise TypeError(f"{name} must hold integer ids, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be a vector, got shape {array.shape}")
    return _widen_ids(array, name) if array.dtype != np.int64 else array


def _widen_ids(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise IndexError(f"{name}: id {array.max()} does not fit in int64")
    return array.astype(np.int64)


def as_float_array(value: Any, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    return array


def as_shards(value: Any, name: str, ndim: int, dtype: np.dtype) -> list[np.ndarray]:
    """A single array or a list of shards, each of `dtype` (never converted: the weights are
    read in place, so a different dtype is an error)."""
    shards = list(value) if isinstance(value, (list, tuple)) else [value]
    if not shards:
        raise ValueError(f"{name} must be an array or a non-empty list of shards")
    arrays = []
    for position, shard in enumerate(shards):
        label = name if len(shards) == 1 else f"{name}[{position}]"
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


def as_unigrams(value: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"unigrams must be a list of counts, got shape {array.shape}")
    return array.astype(np.float32)
