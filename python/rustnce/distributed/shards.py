"""Tables whose rows are split over Ray actors: :class:`TableShard` is one actor's state (its
rows of every table, as NumPy arrays), :class:`ShardedTable` the handle a driver or worker uses
to pull rows by global id and push row-sparse deltas back.

Consistency. Pushes add deltas (``rows += delta``); they never overwrite. A synchronous Ray
actor runs the calls of one caller in the order they were submitted, so a caller's pull always
sees its own earlier pushes to that shard.

Touch-weighted merging (a staleness-aware rule, per row). A push may carry, per row, how many
updates (``touches``) made its delta and the row's touch total as the pusher last read it
(``seen``). The shard keeps each row's touch total; the ``others`` touches other writers added
since the pusher read the row were made concurrently with this delta, from the same stale
values, so the shard applies the delta scaled by its share, ``touches / (touches + others)``.
A delta no other writer overlapped is applied whole; when two writers move a row equally every
round, each delta lands at about half its size, so the row moves by about the mean of their
moves per round rather than their sum.

Faults. With a ``checkpoint_dir``, shard actors are created with ``max_restarts=-1`` and
``max_task_retries=-1``: Ray restarts a dead shard by running its constructor again, and
retries the calls that were in flight (without one, a lost shard is an error). The constructor
of a restarted shard loads its last checkpoint (written every ``checkpoint_seconds`` to a
temporary file in the same directory and renamed into place), so it loses only the pushes it
applied after that checkpoint; :meth:`ShardedTable.status` reports restored shards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layout import ShardLayout


@dataclass(frozen=True)
class TableSpec:
    """One table of a :class:`ShardedTable`: ``dim`` columns (``None``: a vector, e.g. biases)
    and how its rows start: ``"zeros"``, ``"uniform"`` (in ``[-scale/2, scale/2)``, seeded per
    shard) or ``"values"`` (``values``, the whole table, split by the layout)."""

    dim: int | None = None
    init: str = "zeros"
    scale: float = 1.0
    values: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.init not in ("zeros", "uniform", "values"):
            raise ValueError(f"init must be 'zeros', 'uniform' or 'values', got {self.init!r}")
        if self.init == "values" and self.values is None:
            raise ValueError("init='values' needs values")
        if self.dim is not None and self.dim < 1:
            raise ValueError(f"dim must be positive, got {self.dim}")


def _initial_rows(
    spec: TableSpec, rows: int, global_ids: np.ndarray | None, seed: int, shard: int, name: str
) -> np.ndarray:
    shape = (rows,) if spec.dim is None else (rows, spec.dim)
    if spec.init == "zeros":
        return np.zeros(shape, dtype=np.float32)
    if spec.init == "uniform":
        rng = np.random.default_rng([seed, shard])
        return ((rng.random(shape, dtype=np.float32) - 0.5) * spec.scale).astype(np.float32)
    assert spec.values is not None and global_ids is not None
    values = np.asarray(spec.values, dtype=np.float32)
    if values.shape[1:] != shape[1:]:
        raise ValueError(f"{name}: values have shape {values.shape}, rows must be {shape[1:]}")
    return np.ascontiguousarray(values[global_ids])


class TableShard:
    """The rows one shard holds of every table (the class behind each Ray actor).

    The constructor takes only the tables' shapes (Ray keeps constructor arguments to run it
    again on a restart, and large ones could be gone by then): it starts from the checkpoint if
    there is one and the shard is being restarted (``restore``; by default, whether Ray is
    restarting this actor), else from zeros; :meth:`assign` sets the initial values."""

    def __init__(
        self,
        shard: int,
        shapes: dict[str, tuple[int, ...]],
        checkpoint_path: str | None,
        checkpoint_seconds: float,
        restore: bool | None = None,
    ) -> None:
        self.shard = shard
        self.checkpoint_path = checkpoint_path
        self.checkpoint_seconds = checkpoint_seconds
        self.pushes = 0  # pushes reflected in the tables (including checkpointed ones)
        # Per table, each row's touch total (updates that made the deltas pushed with touches).
        self.touches = {name: np.zeros(shape[0], np.float64) for name, shape in shapes.items()}
        self.restored_from: int | None = None
        self.rows_read = self.rows_written = 0  # since this actor started
        self.last_checkpoint = time.monotonic()
        if restore is None:  # a Ray actor: restore when Ray is restarting it
            restore = _ray().get_runtime_context().was_current_actor_reconstructed
        if restore and checkpoint_path is not None and os.path.exists(checkpoint_path):
            with np.load(checkpoint_path) as saved:
                self.tables = {name: saved[name].copy() for name in shapes}
                self.touches = {name: saved[f"__touches__{name}"].copy() for name in shapes}
                self.pushes = int(saved["__pushes__"])
            self.restored_from = self.pushes
        else:
            self.tables = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}

    def assign(self, tables: dict[str, np.ndarray]) -> None:
        """Replaces the rows of the named tables (initial values)."""
        for name, values in tables.items():
            if values.shape != self.tables[name].shape:
                raise ValueError(
                    f"tables[{name!r}]: shard {self.shard} holds {self.tables[name].shape}, "
                    f"got {values.shape}"
                )
            self.tables[name] = np.array(values, dtype=np.float32, copy=True)

    def ping(self) -> int:
        return self.shard

    def pull(
        self, rows: dict[str, np.ndarray], with_touches: bool = False
    ) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The rows ``rows[name]`` (local row numbers) of each named table; with
        ``with_touches``, also their touch totals."""
        self.rows_read += sum(local.size for local in rows.values())
        values = {name: self.tables[name][local] for name, local in rows.items()}
        if not with_touches:
            return values
        return values, {name: self.touches[name][local] for name, local in rows.items()}

    def push(
        self,
        updates: dict[str, tuple[np.ndarray, np.ndarray]],
        touches: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> int:
        """Adds ``delta`` to the rows ``local`` (distinct) of each named table, scaled per row
        by ``count / (count + others)`` for the tables ``touches[name] = (count, seen)`` names
        (``others``: touches added to the row since its total was ``seen``); returns the
        number of pushes applied so far."""
        for name, (local, delta) in updates.items():
            if touches is not None and name in touches:
                count, seen = touches[name]
                total = self.touches[name]
                others = np.maximum(total[local] - seen, 0.0)
                share = (count / (count + others)).astype(np.float32)
                delta = delta * (share[:, None] if delta.ndim == 2 else share)
                total[local] += count
            self.tables[name][local] += delta
            self.rows_written += local.size
        self.pushes += 1
        if (
            self.checkpoint_path is not None
            and time.monotonic() - self.last_checkpoint >= self.checkpoint_seconds
        ):
            self.checkpoint()
        return self.pushes

    def exchange(
        self,
        updates: dict[str, tuple[np.ndarray, np.ndarray]],
        rows: dict[str, np.ndarray],
        touches: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        with_touches: bool = False,
    ) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`push` then :meth:`pull` in one call (one message each way)."""
        if updates:
            self.push(updates, touches)
        return self.pull(rows, with_touches)

    def checkpoint(self) -> str | None:
        """Writes the tables to a temporary file beside the checkpoint and renames it into
        place, so a checkpoint on disk is always complete."""
        if self.checkpoint_path is None:
            return None
        temporary = f"{self.checkpoint_path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            touches = {f"__touches__{name}": total for name, total in self.touches.items()}
            np.savez(handle, __pushes__=np.int64(self.pushes), **self.tables, **touches)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.checkpoint_path)
        self.last_checkpoint = time.monotonic()
        return self.checkpoint_path

    def contents(self) -> dict[str, np.ndarray]:
        return self.tables

    def status(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "pushes": self.pushes,
            "restored_from": self.restored_from,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
        }


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "rustnce.distributed needs Ray: pip install 'rustnce[ray]' (or pip install ray)"
        ) from None
    return ray


class PendingPull:
    """Rows requested from the shards, not yet received: :meth:`result` waits for them."""

    def __init__(
        self,
        refs: list[Any],
        positions: list[dict[str, np.ndarray]],
        sizes: dict[str, int],
        table: ShardedTable,
        with_touches: bool = False,
    ) -> None:
        self._refs = refs
        self._positions = positions
        self._sizes = sizes
        self._table = table
        self._with_touches = with_touches

    @property
    def messages(self) -> int:
        """Shard actors this pull (and push) was sent to."""
        return len(self._refs)

    def result(self) -> dict[str, np.ndarray]:
        """The pulled rows, one array per table in the order the ids were given."""
        return self._assemble()[0]

    def result_with_touches(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The pulled rows and their touch totals (pulled with ``with_touches=True``)."""
        if not self._with_touches:
            raise ValueError("this pull was not made with with_touches=True")
        return self._assemble()

    def _assemble(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        parts = _ray().get(self._refs)
        out, touches = {}, {}
        for name, count in self._sizes.items():
            shape = (count,) + self._table.row_shape(name)
            out[name] = np.empty(shape, dtype=np.float32)
            touches[name] = np.zeros(count, dtype=np.float64)
        for part, positions in zip(parts, self._positions):
            rows, totals = part if self._with_touches else (part, {})
            for name, values in rows.items():
                out[name][positions[name]] = values
            for name, values in totals.items():
                touches[name][positions[name]] = values
        return out, touches


class ShardedTable:
    """Tables of ``layout.rows`` rows (e.g. output vectors and their biases) split over
    ``layout.shards`` Ray actors by ``layout.partition_strategy``. Ray must be initialised.

    ``pull`` fetches rows by global id; ``push`` adds row-sparse deltas (asynchronously: it
    returns Ray object refs to wait on, or ``wait=True``); ``gather`` assembles whole tables.
    Handles can be passed to Ray tasks and actors."""

    def __init__(
        self,
        layout: ShardLayout,
        tables: Mapping[str, TableSpec],
        seed: int = 1,
        checkpoint_dir: str | None = None,
        checkpoint_seconds: float = 10.0,
        name: str = "table",
    ) -> None:
        ray = _ray()
        if not tables:
            raise ValueError("tables must name at least one table")
        self.layout = layout
        self.specs = dict(tables)
        self.checkpoint_dir = checkpoint_dir
        if checkpoint_dir is not None:
            os.makedirs(checkpoint_dir, exist_ok=True)
        needs_ids = any(spec.init == "values" for spec in self.specs.values())
        # Without checkpoints a lost shard could only come back empty: it is not restarted.
        restarts = -1 if checkpoint_dir is not None else 0
        actor_class = ray.remote(TableShard).options(
            max_restarts=restarts, max_task_retries=restarts, num_cpus=0
        )
        self.actors = []
        assigned = []
        for shard in range(layout.shards):
            shapes = {
                table: (layout.sizes[shard],) + self._shape_of(spec)
                for table, spec in self.specs.items()
            }
            path = (
                None
                if checkpoint_dir is None
                else os.path.join(checkpoint_dir, f"{name}-shard{shard}.npz")
            )
            actor = actor_class.remote(shard, shapes, path, float(checkpoint_seconds))
            self.actors.append(actor)
            global_ids = layout.global_ids(shard) if needs_ids else None
            initial = {
                table: _initial_rows(
                    spec, layout.sizes[shard], global_ids, seed, shard, f"tables[{table!r}]"
                )
                for table, spec in self.specs.items()
                if spec.init != "zeros"
            }
            if initial:
                assigned.append(actor.assign.remote(initial))
        ray.get(assigned + [actor.ping.remote() for actor in self.actors])
        if checkpoint_dir is not None:
            # A restarted shard starts from its checkpoint, never from zeros.
            self.checkpoint()
        # Handles travel to workers: keep the shapes, not the initial values.
        self.specs = {table: TableSpec(spec.dim) for table, spec in self.specs.items()}

    @staticmethod
    def _shape_of(spec: TableSpec) -> tuple[int, ...]:
        return () if spec.dim is None else (spec.dim,)

    def row_shape(self, name: str) -> tuple[int, ...]:
        dim = self.specs[name].dim
        return () if dim is None else (dim,)

    def _check(self, name: str, ids: np.ndarray) -> np.ndarray:
        if name not in self.specs:
            raise KeyError(f"no table {name!r}; tables: {', '.join(self.specs)}")
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.layout.rows):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise IndexError(f"ids[{name!r}]: id {bad} is out of range [0, {self.layout.rows})")
        return ids

    def _pull_requests(
        self, ids: Mapping[str, np.ndarray]
    ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]], dict[str, int]]:
        requests: list[dict[str, np.ndarray]] = [{} for _ in range(self.layout.shards)]
        positions: list[dict[str, np.ndarray]] = [{} for _ in range(self.layout.shards)]
        sizes = {}
        for name, table_ids in ids.items():
            table_ids = self._check(name, table_ids)
            sizes[name] = table_ids.size
            for shard, (where, local) in enumerate(self.layout.split(table_ids)):
                if where.size:
                    requests[shard][name] = local
                    positions[shard][name] = where
        return requests, positions, sizes

    def _push_requests(
        self,
        updates: Mapping[str, tuple[np.ndarray, np.ndarray]],
        touches: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> list[tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]]:
        """Per shard, its part of ``updates`` and of ``touches``."""
        requests: list[tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]] = [
            ({}, {}) for _ in range(self.layout.shards)
        ]
        touches = touches or {}
        for name in touches:
            if name not in updates:
                raise KeyError(f"touches[{name!r}]: no update for table {name!r}")
        for name, (table_ids, delta) in updates.items():
            table_ids = self._check(name, table_ids)
            delta = np.asarray(delta, dtype=np.float32)
            if delta.shape != (table_ids.size,) + self.row_shape(name):
                raise ValueError(
                    f"updates[{name!r}]: delta has shape {delta.shape}, expected "
                    f"{(table_ids.size,) + self.row_shape(name)}"
                )
            weights = None
            if name in touches:
                count, seen = (np.asarray(a, dtype=np.float64) for a in touches[name])
                if count.shape != (table_ids.size,) or seen.shape != (table_ids.size,):
                    raise ValueError(
                        f"touches[{name!r}]: counts {count.shape} and seen {seen.shape} must "
                        f"both have shape {(table_ids.size,)}"
                    )
                if not (np.isfinite(count).all() and (count > 0).all()):
                    raise ValueError(f"touches[{name!r}]: counts must be positive and finite")
                weights = (count, seen)
            for shard, (where, local) in enumerate(self.layout.split(table_ids)):
                if where.size:
                    requests[shard][0][name] = (local, delta[where])
                    if weights is not None:
                        requests[shard][1][name] = (weights[0][where], weights[1][where])
        return requests

    def exchange_async(
        self,
        updates: Mapping[str, tuple[np.ndarray, np.ndarray]],
        ids: Mapping[str, np.ndarray],
        touches: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
        with_touches: bool = False,
    ) -> PendingPull:
        """Pushes ``updates`` (as :meth:`push`, with ``touches``) and starts pulling ``ids``
        (as :meth:`pull_async`; with ``with_touches``, their touch totals too), one message per
        shard involved: each shard applies the push before reading the rows."""
        pushes = self._push_requests(updates, touches)
        pulls, positions, sizes = self._pull_requests(ids)
        refs, kept = [], []
        for shard in range(self.layout.shards):
            push, weights = pushes[shard]
            if pulls[shard] or push:
                refs.append(
                    self.actors[shard].exchange.remote(
                        push, pulls[shard], weights or None, with_touches
                    )
                )
                kept.append(positions[shard])
        return PendingPull(refs, kept, sizes, self, with_touches)

    def pull_async(self, ids: Mapping[str, np.ndarray], with_touches: bool = False) -> PendingPull:
        """Starts fetching rows ``ids[name]`` (global ids) of each named table."""
        return self.exchange_async({}, ids, with_touches=with_touches)

    def pull(self, ids: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows ``ids[name]`` (global ids) of each named table."""
        return self.pull_async(ids).result()

    def push(
        self,
        updates: Mapping[str, tuple[np.ndarray, np.ndarray]],
        wait: bool = False,
        touches: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> list[Any]:
        """Adds ``delta`` to rows ``ids`` of each named table (``updates[name] = (ids,
        delta)``, ids distinct). With ``touches[name] = (counts, seen)`` (per row: the updates
        that made its delta, and the row's touch total when the pusher last read it) the delta
        is merged touch-weighted (see the module's docstring). Returns one Ray object ref per
        shard written (waited for with ``wait=True``)."""
        refs = [
            self.actors[shard].push.remote(request, weights or None)
            for shard, (request, weights) in enumerate(self._push_requests(updates, touches))
            if request
        ]
        if wait:
            _ray().get(refs)
        return refs

    def gather(self) -> dict[str, np.ndarray]:
        """Every table whole, rows in global id order."""
        ray = _ray()
        parts = ray.get([actor.contents.remote() for actor in self.actors])
        owner, row = self.layout.locate(np.arange(self.layout.rows))
        out = {}
        for name in self.specs:
            whole = np.empty((self.layout.rows,) + self.row_shape(name), dtype=np.float32)
            for shard, part in enumerate(parts):
                mine = owner == shard
                whole[mine] = part[name][row[mine]]
            out[name] = whole
        return out

    def checkpoint(self) -> None:
        """Checkpoints every shard now (a no-op without ``checkpoint_dir``)."""
        _ray().get([actor.checkpoint.remote() for actor in self.actors])

    def status(self) -> list[dict[str, Any]]:
        """Per shard: pushes applied, and ``restored_from`` (the checkpoint's push count) if
        the shard was restarted and restored."""
        return _ray().get([actor.status.remote() for actor in self.actors])

    def kill_shard(self, shard: int) -> None:
        """Kills shard ``shard``'s actor (Ray restarts it from its checkpoint): for tests."""
        _ray().kill(self.actors[shard], no_restart=False)

    def shutdown(self) -> None:
        """Ends the shard actors."""
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
