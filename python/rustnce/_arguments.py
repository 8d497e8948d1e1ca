"""Checking Python arguments for the code that still checks in Python (``rustnce.distributed``'s
options: ints and strings), and the memory check the extension calls back into. Everything
else checks its arguments in the extension (``src/py/arguments.rs``). Every error names the
argument as the user passed it and says what was expected. See the "Errors" section of
``docs/api.md``."""

from __future__ import annotations

import operator
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

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


def as_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of a few strings, e.g. ``partition_strategy``."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {_type_name(value)}"
        )
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def shard_sizes(rows: int, count: int) -> list[int]:
    """The rows each of `count` shards holds under both partition strategies: the first
    ``rows mod count`` shards one more (docs/semantics.md §9)."""
    return [rows // count + (1 if p < rows % count else 0) for p in range(count)]


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
