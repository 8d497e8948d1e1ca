#!/usr/bin/env python3
"""Record TensorFlow 2.21 reference outputs for rustnce's parity tests.

Writes ``tests/tf_reference/tf_2_21_cases.json`` next to this script. The JSON is
committed; ``tests/test_tf_parity.py`` replays every case against ``rustnce`` and
``rustnce.reference``.

How to rerun (TensorFlow is only needed here, not by the tests):

    python3 -m venv .tfenv
    .tfenv/bin/pip install tensorflow-cpu==2.21.0
    .tfenv/bin/python tests/tf_reference/record_tf.py

The script is deterministic: every random input comes from fixed NumPy seeds and every
sampler call uses explicit seeds. It sets ``TF_ENABLE_ONEDNN_OPTS=0`` (plain Eigen
kernels) so float results do not depend on the CPU's oneDNN code paths. At the end it
compares the recording with the reference values of docs/semantics.md
(``docs/semantics.md`` §13) and prints ``SPEC MISMATCH`` lines if any differ.

Sections of the JSON (all arrays are nested lists; floats are written with full
precision, float32 values as the exact double they represent; non-finite floats, if any,
are written as the strings "nan", "inf", "-inf"):

* ``losses``: ``nce_loss``, ``sampled_softmax_loss`` and ``_compute_sampled_logits``
  with explicit ``sampled_values``, plus gradients of ``sum(loss)`` and
  ``sum(g * loss)`` w.r.t. weights/biases (IndexedSlices, per shard) and inputs.
* ``samplers``: three successive eager calls with identical attributes for each
  case (TensorFlow's eager kernel cache keeps the op's random stream, so the calls
  continue one stream). Each case's attribute set is unique within the recording
  process, so its first call is the kernel's first call. ``seed`` is either an int op
  seed (attributes ``(87654321, seed mod (2**31-1))``) or a raw attribute pair
  ``[seed, seed2]`` (recorded from ``tf.random.set_seed(g)`` plus op seed ``s``, in a
  separate process; ``tf.random.set_seed`` also clears the kernel cache).
* ``fixed_unigram``: fixed-unigram tables (distortion, reserved ids, sharding,
  ``vocab_file`` given as file contents).
* ``accidental_hits``: ``tf.nn.compute_accidental_hits``.
* ``embedding_lookup``: sharded lookups, "div" and "mod".
* ``default_sampler_losses``: ``sampled_softmax_loss(seed=s)`` with the default
  sampler, two successive calls, and the matching
  ``log_uniform_candidate_sampler`` triples recorded in a fresh process.
* ``full_losses``: the documentation's full-softmax / full-sigmoid evaluation recipe.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tf_2_21_cases.json")
MAXINT32 = 2**31 - 1
DEFAULT_GRAPH_SEED = 87654321
FLT_MAX = float(np.finfo(np.float32).max)

_tf = None


def tf():
    global _tf
    if _tf is None:
        import tensorflow

        _tf = tensorflow
    return _tf


# --------------------------------------------------------------------------- encoding


def enc(x):
    """NumPy array / scalar / tensor -> JSON-safe nested lists (full precision)."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if np.all(np.isfinite(x)):
            return x.astype(np.float64).tolist()
        return _enc_nonfinite(x.astype(np.float64).tolist())
    if x.dtype.kind in "iub":
        return x.tolist()
    raise TypeError(f"cannot encode dtype {x.dtype}")


def _enc_nonfinite(v):
    if isinstance(v, list):
        return [_enc_nonfinite(e) for e in v]
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return v


# ------------------------------------------------------------------ sampler plumbing

SAMPLER_KINDS = ("uniform", "log_uniform", "learned_unigram", "fixed_unigram", "all_candidate")
_seen_attrs = set()


def seed_attrs(seed):
    from tensorflow.python.framework import random_seed

    return tuple(int(s) for s in random_seed.get_seed(seed))


def register_attrs(kind, num_true, num_sampled, unique, range_max, seed, extra=()):
    """Fail loudly if an op with this attribute set already ran in this process."""
    key = (kind, num_true, num_sampled, bool(unique), range_max, seed_attrs(seed), tuple(extra))
    if key in _seen_attrs:
        raise RuntimeError(f"attribute set used twice (kernel cache would continue): {key}")
    _seen_attrs.add(key)
    return key


def fixed_extra(fx):
    return (
        fx.get("vocab_file", ""),
        float(fx.get("distortion", 1.0)),
        int(fx.get("num_reserved_ids", 0)),
        int(fx.get("num_shards", 1)),
        int(fx.get("shard", 0)),
        tuple(float(u) for u in fx.get("unigrams", ())),
    )


def call_sampler(kind, true_classes, num_true, num_sampled, unique, range_max, seed, fx=None):
    t = tf()
    tc = t.constant(np.asarray(true_classes, np.int64).reshape(-1, num_true))
    if kind == "uniform":
        out = t.random.uniform_candidate_sampler(
            tc, num_true, num_sampled, unique, range_max, seed=seed
        )
    elif kind == "log_uniform":
        out = t.random.log_uniform_candidate_sampler(
            tc, num_true, num_sampled, unique, range_max, seed=seed
        )
    elif kind == "learned_unigram":
        out = t.random.learned_unigram_candidate_sampler(
            tc, num_true, num_sampled, unique, range_max, seed=seed
        )
    elif kind == "fixed_unigram":
        fx = fx or {}
        out = t.random.fixed_unigram_candidate_sampler(
            tc,
            num_true,
            num_sampled,
            unique,
            range_max,
            vocab_file=fx.get("vocab_file", ""),
            distortion=fx.get("distortion", 1.0),
            num_reserved_ids=fx.get("num_reserved_ids", 0),
            num_shards=fx.get("num_shards", 1),
            shard=fx.get("shard", 0),
            unigrams=[float(u) for u in fx.get("unigrams", ())],
            seed=seed,
        )
    elif kind == "all_candidate":
        out = t.random.all_candidate_sampler(tc, num_true, num_sampled, unique, seed=seed)
    else:
        raise ValueError(kind)
    s, tec, sec = out
    assert s.dtype == t.int64 and tec.dtype == t.float32 and sec.dtype == t.float32
    return {
        "sampled_candidates": enc(s),
        "true_expected_count": enc(tec),
        "sampled_expected_count": enc(sec),
    }


def record_sampler_case(case, fx=None, true_classes_per_call=None, ncalls=3):
    """Run `ncalls` successive calls with identical attributes; fill case['calls']."""
    kind = case["sampler"]
    extra = fixed_extra(fx) if kind == "fixed_unigram" else ()
    # An int seed is TF's op seed; a recorded [seed, seed2] pair comes from a global-seed
    # case, whose op seed is in "_op_seed" (tf.random.set_seed was called by the caller).
    seed_arg = case["seed"] if isinstance(case["seed"], int) else case["_op_seed"]
    case["seed_attrs"] = list(seed_attrs(seed_arg))
    register_attrs(
        kind,
        case["num_true"],
        case["num_sampled"],
        case["unique"],
        case["range_max"],
        seed_arg,
        extra,
    )
    calls = []
    for c in range(ncalls):
        tcs = true_classes_per_call[c] if true_classes_per_call else case["true_classes"]
        r = call_sampler(
            kind,
            tcs,
            case["num_true"],
            case["num_sampled"],
            case["unique"],
            case["range_max"],
            seed_arg,
            fx,
        )
        r["true_classes"] = enc(np.asarray(tcs, np.int64).reshape(-1, case["num_true"]))
        calls.append(r)
    case["calls"] = calls
    case.pop("true_classes", None)
    case.pop("_op_seed", None)
    return case


def fixed_table_size(n_unigrams, num_reserved_ids, num_shards, shard):
    """Local table size, following the counter quirk of docs/semantics.md §7.6."""
    w = sum(1 for r in range(num_reserved_ids) if r % num_shards == shard)
    word_id = w
    for _ in range(n_unigrams):
        if word_id % num_shards == shard:
            w += 1
        word_id += 1
    return w


# ------------------------------------------------------------------- section: samplers


def sampler_cases():
    rng = np.random.RandomState(20240611)
    cases = []

    def add(
        kind,
        range_max,
        num_sampled,
        true_classes,
        unique,
        seed,
        fx=None,
        tcs_per_call=None,
        note=None,
    ):
        tc = np.asarray(true_classes, np.int64)
        case = {
            "id": f"{kind}-{len(cases)}",
            "sampler": kind,
            "range_max": range_max,
            "num_true": int(tc.shape[1]),
            "num_sampled": num_sampled,
            "unique": bool(unique),
            "seed": seed,
            "true_classes": tc.tolist(),
        }
        if fx is not None:
            case["fixed_unigram"] = {k: v for k, v in fx.items()}
        if note:
            case["note"] = note
        cases.append(record_sampler_case(case, fx, tcs_per_call))

    # docs/semantics.md §13 items 2-4 and 6.
    tc2 = [[0, 3], [19, 7]]
    add("log_uniform", 20, 6, tc2, False, 3, note="spec 13.2")
    add("log_uniform", 20, 6, tc2, True, 3, note="spec 13.2")
    add("uniform", 20, 6, tc2, False, 3, note="spec 13.2")
    add("uniform", 20, 6, tc2, True, 3, note="spec 13.2")
    add("log_uniform", 20, 6, tc2, True, 5, note="spec 13.3")
    add("log_uniform", 1000, 6, [[0]], False, 7, note="spec 13.4")
    add("learned_unigram", 5, 4, [[2], [2], [4]], False, 1, note="spec 13.6")
    # Op seeds that need truncation mod 2**31-1.
    add("log_uniform", 1000, 6, [[0]], False, 2**31 + 9, note="op seed 2**31+9 -> seed2 10")
    add("uniform", 100, 5, [[1]], True, 2**31 - 1, note="op seed 2**31-1 -> seed2 0")

    seeds = [1, 3, 5, 42, 123456]
    combos = [  # range_max, num_sampled, batch, num_true
        (20, 6, 2, 2),
        (1, 1, 1, 1),
        (7, 7, 3, 1),
        (10, 15, 2, 3),
        (64, 16, 4, 2),
        (5, 4, 3, 1),
        (50, 30, 2, 1),
        (1000, 64, 3, 1),
        (1000, 10, 0, 2),
        (100000, 64, 2, 2),
        (100000, 8, 1, 1),
    ]
    n = 0
    for kind in SAMPLER_KINDS:
        for range_max, num_sampled, batch, num_true in combos:
            if kind == "fixed_unigram" and range_max > 1000:
                continue
            for unique in (False, True):
                rmax = num_sampled if kind == "all_candidate" else range_max
                if unique and num_sampled > rmax:
                    continue
                fx = None
                if kind == "fixed_unigram":
                    counts = rng.randint(1, 30, size=range_max).astype(float)
                    if range_max > 3:
                        counts[rng.randint(0, range_max)] = 0.5
                    fx = {"unigrams": counts.tolist(), "distortion": [1.0, 0.75, 0.5, 0.0][n % 4]}
                tc = rng.randint(0, rmax, size=(batch, num_true))
                per_call = None
                if kind == "learned_unigram" and n % 2 == 0:
                    per_call = [
                        rng.randint(0, rmax, size=(batch, num_true)).tolist() for _ in range(3)
                    ]
                    tc = np.asarray(per_call[0], np.int64).reshape(batch, num_true)
                # Pick the next seed whose attribute set is still fresh in this process.
                for k in range(len(seeds)):
                    seed = seeds[(n + k) % len(seeds)]
                    key = (
                        kind,
                        num_true,
                        num_sampled,
                        unique,
                        None if kind == "all_candidate" else range_max,
                        seed_attrs(seed),
                        fixed_extra(fx) if fx else (),
                    )
                    if key not in _seen_attrs:
                        break
                add(
                    kind,
                    None if kind == "all_candidate" else range_max,
                    num_sampled,
                    tc.reshape(batch, num_true),
                    unique,
                    seed,
                    fx,
                    per_call,
                )
                n += 1
    return cases


def global_seed_sampler_cases():
    """Run in a fresh process: tf.random.set_seed(g) + op seed s -> attributes (g, s)."""
    t = tf()
    rng = np.random.RandomState(777)
    cases = []
    configs = [  # kind, g, s, range_max, num_sampled, true_classes, unique, fx
        ("log_uniform", 11, 5, 1000, 6, [[0]], False, None),  # spec 13.4
        ("log_uniform", 11, 6, 1000, 6, [[0]], True, None),
        ("uniform", 1, 7, 30, 10, [[3, 4]], True, None),
        ("uniform", 2**31 + 1, 2**31 + 3, 17, 5, [[2], [16]], False, None),
        ("log_uniform", 0, 0, 50, 8, [[1, 2], [3, 4]], True, None),  # (0, 0) -> (0, 2**31-1)
        ("learned_unigram", 99, 4, 10, 6, [[1], [1], [9]], False, None),
        (
            "fixed_unigram",
            5,
            123,
            8,
            5,
            [[0]],
            False,
            {"unigrams": [5, 1, 3, 0, 8, 2, 4, 1], "distortion": 0.75},
        ),
        ("all_candidate", 3, 3, None, 4, [[0, 3]], True, None),
        (
            "log_uniform",
            123456789,
            987654321,
            100000,
            32,
            rng.randint(0, 100000, (2, 2)).tolist(),
            True,
            None,
        ),
    ]
    for kind, g, s, range_max, num_sampled, tc, unique, fx in configs:
        t.random.set_seed(g)  # also clears the eager kernel cache
        pair = list(seed_attrs(s))
        case = {
            "id": f"global-{kind}-{len(cases)}",
            "sampler": kind,
            "range_max": range_max,
            "num_true": len(tc[0]),
            "num_sampled": num_sampled,
            "unique": unique,
            "seed": pair,
            "_op_seed": s,
            "global_seed": g,
            "op_seed": s,
            "true_classes": tc,
        }
        if fx is not None:
            case["fixed_unigram"] = fx
        cases.append(record_sampler_case(case, fx))
    return cases


# -------------------------------------------------------------- section: fixed unigram


SPEC_FIXED_UNIGRAMS = [5, 1, 3, 0, 8, 2, 4, 1]
SPEC_FIXED_TABLE = [  # distortion, reserved, shards, shard, sampled
    (1.0, 0, 1, 0, [0, 2, 2, 4, 4]),
    (0.75, 0, 1, 0, [1, 2, 2, 4, 4]),
    (0.5, 2, 1, 0, [8, 8, 8, 8, 2]),
    (1.0, 0, 2, 0, [1, 2, 2, 3, 0]),
    (1.0, 0, 2, 1, [3, 2, 2, 2, 0]),
    (1.0, 3, 2, 1, [3, 3, 3, 3, 2]),
    (0.0, 0, 1, 0, [1, 2, 2, 3, 4]),
]


def fixed_unigram_cases(tmpdir):
    rng = np.random.RandomState(31337)
    cases = []

    def add(fx, num_sampled, unique, seed, tc=None, note=None, vocab_contents=None):
        if vocab_contents is None:
            n_words = len(fx["unigrams"])
        else:
            n_words = sum(1 for line in vocab_contents.split("\n") if line)
        range_max = fixed_table_size(
            n_words, fx.get("num_reserved_ids", 0), fx.get("num_shards", 1), fx.get("shard", 0)
        )
        if tc is None:
            tc = rng.randint(0, range_max, size=(rng.randint(1, 4), rng.randint(1, 3))).tolist()
        case = {
            "id": f"fixed-{len(cases)}",
            "sampler": "fixed_unigram",
            "range_max": range_max,
            "num_true": len(tc[0]),
            "num_sampled": num_sampled,
            "unique": unique,
            "seed": seed,
            "true_classes": tc,
        }
        fx = dict(fx)
        if vocab_contents is not None:
            path = os.path.join(tmpdir, f"vocab_{len(cases)}.txt")
            with open(path, "w") as f:
                f.write(vocab_contents)
            fx_tf = dict(fx, vocab_file=path)
            fx_json = dict(fx, vocab_file_contents=vocab_contents)
        else:
            fx_tf = fx
            fx_json = fx
        case["fixed_unigram"] = fx_json
        if note:
            case["note"] = note
        cases.append(record_sampler_case(case, fx_tf))

    for dist, res, shards, shard, _ in SPEC_FIXED_TABLE:
        add(
            {
                "unigrams": SPEC_FIXED_UNIGRAMS,
                "distortion": dist,
                "num_reserved_ids": res,
                "num_shards": shards,
                "shard": shard,
            },
            5,
            False,
            9,
            tc=[[0]],
            note="spec 13.5",
        )
    # docs/semantics.md §7.6 quirk example: unigrams [1,7,2,3,5,11], reserved 2, 2 shards, shard 1
    # -> table [0,1,2,5].
    add(
        {"unigrams": [1, 7, 2, 3, 5, 11], "num_reserved_ids": 2, "num_shards": 2, "shard": 1},
        6,
        False,
        10,
        tc=[[0, 1], [2, 3]],
        note="spec 14.6 shard/reserved counter quirk",
    )

    seeds = [1, 3, 5, 42, 123456]
    for i in range(22):
        n = int(rng.randint(3, 40))
        counts = rng.randint(0, 25, size=n).astype(float)
        if i % 3 == 0:
            counts = counts * 0.1 + 0.05  # values that are not exact in float32
        fx = {
            "unigrams": [float(c) for c in counts],
            "distortion": [0.0, 0.5, 0.75, 1.0][i % 4],
            "num_reserved_ids": int(rng.randint(0, 4)) if i % 2 else 0,
            "num_shards": int([1, 1, 2, 3][i % 4]),
        }
        fx["shard"] = int(rng.randint(0, fx["num_shards"]))
        res_local = sum(
            1 for r in range(fx["num_reserved_ids"]) if r % fx["num_shards"] == fx["shard"]
        )
        unique = bool(i % 5 in (0, 3))
        # Unique sampling needs at least S ids with p > 0 (otherwise TF rejects forever).
        w = [0.0] * res_local
        word_id = res_local
        for c in counts:
            if word_id % fx["num_shards"] == fx["shard"]:
                w.append(float(np.float32(c) ** np.float32(fx["distortion"])))
            word_id += 1
        nonzero = sum(1 for x in w if x > 0)
        if nonzero == 0:
            continue
        num_sampled = (
            int(rng.randint(1, max(2, min(nonzero, 12) + 1))) if unique else int(rng.randint(1, 20))
        )
        num_sampled = min(num_sampled, nonzero) if unique else num_sampled
        add(fx, num_sampled, unique, seeds[i % len(seeds)] + 1000 * i)

    vocab_a = "the,120\nof,64\n\nand,40\na,33\nin,20\n\n\nto,12\nis,7\nwas,3\nword,12\nrare,0\n"
    vocab_b = (
        "7\n3.5\nx,y,2\n\n1e1\nsemi;colon,0.25\n4"  # plain numbers, extra commas, no final newline
    )
    add(
        {"distortion": 0.75},
        4,
        False,
        2001,
        tc=[[0], [9]],
        vocab_contents=vocab_a,
        note="vocab_file with CSV lines and empty lines",
    )
    add(
        {"distortion": 1.0, "num_reserved_ids": 2},
        3,
        True,
        2002,
        tc=[[2, 3]],
        vocab_contents=vocab_b,
        note="vocab_file with plain numbers and reserved ids",
    )
    add(
        {"distortion": 0.5, "num_shards": 2, "shard": 1},
        5,
        False,
        2003,
        tc=[[0]],
        vocab_contents=vocab_a,
        note="sharded vocab_file",
    )
    return cases


# --------------------------------------------------------------------- section: losses


def split_shards(mat, num_shards, strategy):
    mat = np.asarray(mat)
    n = mat.shape[0]
    if strategy == "mod":
        return [mat[p::num_shards] for p in range(num_shards)]
    q, e = divmod(n, num_shards)
    sizes = [q + 1] * e + [q] * (num_shards - e)
    out, start = [], 0
    for s in sizes:
        out.append(mat[start : start + s])
        start += s
    return out


def grad_record(g):
    t = tf()
    if g is None:
        return {"type": "none"}
    if isinstance(g, t.IndexedSlices):
        return {
            "type": "IndexedSlices",
            "indices": enc(g.indices),
            "indices_dtype": g.indices.dtype.name,
            "values": enc(g.values),
            "dense_shape": enc(g.dense_shape) if g.dense_shape is not None else None,
        }
    return {"type": "dense", "values": enc(g)}


def tf_loss(
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
    strategy,
):
    t = tf()
    if strategy == "mod":
        fn = t.compat.v1.nn.nce_loss if kind == "nce" else t.compat.v1.nn.sampled_softmax_loss
        return fn(
            weights=weights,
            biases=biases,
            labels=labels,
            inputs=inputs,
            num_sampled=num_sampled,
            num_classes=num_classes,
            num_true=num_true,
            sampled_values=sampled_values,
            remove_accidental_hits=remove_accidental_hits,
            partition_strategy="mod",
        )
    fn = t.nn.nce_loss if kind == "nce" else t.nn.sampled_softmax_loss
    return fn(
        weights=weights,
        biases=biases,
        labels=labels,
        inputs=inputs,
        num_sampled=num_sampled,
        num_classes=num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
    )


def record_loss_case(case):
    t = tf()
    from tensorflow.python.ops import nn_impl

    dt = np.dtype(case["dtype"])
    B, T, S, C = case["batch"], case["num_true"], case["num_sampled"], case["num_classes"]
    strategy = case["partition_strategy"]
    labels = t.constant(np.asarray(case["labels"], case["labels_dtype"]).reshape(B, T))
    inputs_np = np.asarray(case["inputs"], dt).reshape(B, case["dim"])
    sv = case["sampled_values"]
    sampled_values = (
        t.constant(np.asarray(sv["sampled_candidates"], np.int64)),
        t.constant(np.asarray(sv["true_expected_count"], dt).reshape(B, T)),
        t.constant(np.asarray(sv["sampled_expected_count"], dt)),
    )
    hits = case["remove_accidental_hits"]

    def params(key):
        if case[key + "_sharded"]:
            return [np.asarray(p, dt) for p in case[key]]
        return np.asarray(case[key], dt)

    w_np, b_np = params("weights"), params("biases")
    out = {}

    def consts():
        w = [t.constant(p) for p in w_np] if isinstance(w_np, list) else t.constant(w_np)
        b = [t.constant(p) for p in b_np] if isinstance(b_np, list) else t.constant(b_np)
        return w, b, t.constant(inputs_np)

    w, b, x = consts()
    for kind, name in (("nce", "nce_loss"), ("softmax", "sampled_softmax_loss")):
        loss = tf_loss(kind, w, b, labels, x, S, C, T, sampled_values, hits, strategy)
        assert loss.dtype.name == case["dtype"] and tuple(loss.shape) == (B,)
        out[name] = enc(loss)

    logits = {}
    for slq in (True, False) if case["also_no_log_q"] else (True,):
        lg, lb = nn_impl._compute_sampled_logits(
            weights=w if isinstance(w, list) else [w],
            biases=b,
            labels=labels,
            inputs=x,
            num_sampled=S,
            num_classes=C,
            num_true=T,
            sampled_values=sampled_values,
            subtract_log_q=slq,
            remove_accidental_hits=hits,
            partition_strategy=strategy,
        )
        rec = {"logits": enc(lg), "labels": enc(lb)}
        if not slq:
            # What nce_loss / sampled_softmax_loss compute from these logits (TF ops).
            rec["nce_loss"] = enc(
                t.reduce_sum(t.nn.sigmoid_cross_entropy_with_logits(labels=lb, logits=lg), axis=1)
            )
            rec["sampled_softmax_loss"] = enc(
                t.nn.softmax_cross_entropy_with_logits(labels=t.stop_gradient(lb), logits=lg)
            )
        logits["subtract_log_q_" + str(slq).lower()] = rec
    out["compute_sampled_logits"] = logits

    # Gradients of sum(loss) and sum(g * loss).
    g = np.asarray(case["upstream_g"], dt)
    grads = {}
    for kind, name in (("nce", "nce_loss"), ("softmax", "sampled_softmax_loss")):
        grads[name] = {}
        for red in ("sum", "weighted_sum"):
            wv = [t.Variable(p) for p in w_np] if isinstance(w_np, list) else t.Variable(w_np)
            bv = [t.Variable(p) for p in b_np] if isinstance(b_np, list) else t.Variable(b_np)
            xv = t.constant(inputs_np)
            with t.GradientTape() as tape:
                tape.watch(xv)
                loss = tf_loss(kind, wv, bv, labels, xv, S, C, T, sampled_values, hits, strategy)
                total = t.reduce_sum(loss) if red == "sum" else t.reduce_sum(loss * t.constant(g))
            wl = wv if isinstance(wv, list) else [wv]
            bl = bv if isinstance(bv, list) else [bv]
            gr = tape.gradient(total, wl + bl + [xv])
            gw, gb, gx = gr[: len(wl)], gr[len(wl) : len(wl) + len(bl)], gr[-1]
            grads[name][red] = {
                "weights": [grad_record(e) for e in gw]
                if isinstance(wv, list)
                else grad_record(gw[0]),
                "biases": [grad_record(e) for e in gb]
                if isinstance(bv, list)
                else grad_record(gb[0]),
                "inputs": grad_record(gx),
            }
    out["gradients"] = grads
    case["expected"] = out
    return case


def loss_cases():
    rng = np.random.RandomState(424242)
    cases = []

    def finish(case):
        cases.append(record_loss_case(case))

    # docs/semantics.md §13 item 1 (with and without hit removal).
    for hits in (False, True):
        finish(
            {
                "id": f"spec13.1-hits-{hits}",
                "dtype": "float32",
                "labels_dtype": "int64",
                "batch": 2,
                "num_true": 1,
                "num_sampled": 3,
                "num_classes": 4,
                "dim": 2,
                "weights": np.float32([[1, 0], [0, 1], [1, 1], [-1, 0.5]]).astype(float).tolist(),
                "weights_sharded": False,
                "biases": np.float32([0.1, -0.2, 0.0, 0.3]).astype(float).tolist(),
                "biases_sharded": False,
                "labels": [[2], [0]],
                "inputs": np.float32([[0.5, -1], [2, 0.25]]).astype(float).tolist(),
                "sampled_values": {
                    "sampled_candidates": [2, 1, 3],
                    "true_expected_count": np.float32([[0.5], [0.25]]).astype(float).tolist(),
                    "sampled_expected_count": np.float32([0.5, 0.8, 0.1]).astype(float).tolist(),
                },
                "remove_accidental_hits": hits,
                "partition_strategy": "div",
                "tf_api": "tf.nn",
                "also_no_log_q": True,
                "upstream_g": np.float32([0.7, -1.3]).astype(float).tolist(),
                "note": "spec 13.1",
            }
        )

    batches = [0, 1, 2, 3, 4, 5, 1, 3]
    shardings = [  # (weights shards, biases shards, strategy)
        (None, None, "div"),
        (3, 3, "div"),
        (2, 2, "mod"),
        (4, None, "div"),
        (None, 3, "mod"),
        (3, 2, "mod"),
        (5, 5, "div"),
        (1, 1, "div"),
    ]
    for i in range(28):
        dtype = "float64" if i % 4 == 3 else "float32"
        dt = np.dtype(dtype)
        B = batches[i % len(batches)]
        T = [1, 2, 3][i % 3]
        S = int(rng.randint(1, 7))
        D = int(rng.randint(1, 5))
        C = int(rng.randint(3, 13))
        extra = int(rng.randint(0, 4)) if i % 3 else 0
        pw, pb, strategy = shardings[i % len(shardings)]
        rows = C + extra
        if strategy == "div":
            rows = max(rows, pw or 1, pb or 1)  # div needs at least one row per shard
        hits = bool(i % 2 == 0) if i < 20 else bool(rng.randint(0, 2))
        W = rng.normal(0, 0.7, size=(rows, D)).astype(dt)
        bias = rng.normal(0, 0.3, size=rows).astype(dt)
        X = rng.normal(0, 1.0, size=(B, D)).astype(dt)
        labels = rng.randint(0, C, size=(B, T))
        if T > 1 and B > 0 and i % 2:
            labels[0, 1] = labels[0, 0]  # duplicate label within a row
        sampled = rng.randint(0, C, size=S)
        for k in range(S):
            u = rng.uniform()
            if B > 0 and u < 0.4:
                sampled[k] = labels[rng.randint(0, B), rng.randint(0, T)]  # accidental hit
            elif k > 0 and u > 0.85:
                sampled[k] = sampled[rng.randint(0, k)]  # duplicate sampled id
        qt = rng.uniform(0.02, 2.5, size=(B, T)).astype(dt)
        qs = rng.uniform(0.02, 2.5, size=S).astype(dt)
        g = rng.uniform(-1.5, 1.5, size=B).astype(dt)
        case = {
            "id": f"random-{i}",
            "dtype": dtype,
            "labels_dtype": "int32" if i % 5 == 4 else "int64",
            "batch": B,
            "num_true": T,
            "num_sampled": S,
            "num_classes": C,
            "dim": D,
            "weights": [enc(p) for p in split_shards(W, pw, strategy)] if pw else enc(W),
            "weights_sharded": pw is not None,
            "biases": [enc(p) for p in split_shards(bias, pb, strategy)] if pb else enc(bias),
            "biases_sharded": pb is not None,
            "labels": labels.tolist(),
            "inputs": enc(X),
            "sampled_values": {
                "sampled_candidates": sampled.tolist(),
                "true_expected_count": enc(qt),
                "sampled_expected_count": enc(qs),
            },
            "remove_accidental_hits": hits,
            "partition_strategy": strategy,
            "tf_api": "tf.compat.v1.nn" if strategy == "mod" else "tf.nn",
            "also_no_log_q": bool(i % 3 == 1),
            "upstream_g": enc(g),
        }
        finish(case)
    return cases


# ---------------------------------------------------------------- section: other ops


def accidental_hits_cases():
    t = tf()
    rng = np.random.RandomState(99)
    raw = [
        ([[5, 1], [1, 1], [7, 9], [2, 5]], [1, 5, 3, 1, 2], "spec 13.7"),
        ([[0], [1]], [2, 3, 4], "no hits"),
        (np.zeros((0, 2), np.int64).tolist(), [1, 2], "empty batch"),
    ]
    for _ in range(14):
        B, T, S = int(rng.randint(1, 5)), int(rng.randint(1, 4)), int(rng.randint(1, 8))
        hi = int(rng.randint(2, 9))
        raw.append(
            (rng.randint(0, hi, size=(B, T)).tolist(), rng.randint(0, hi, size=S).tolist(), None)
        )
    cases = []
    for tc, sampled, note in raw:
        T = len(tc[0]) if tc else 2
        tct = t.constant(np.asarray(tc, np.int64).reshape(-1, T))
        idx, ids, w = t.nn.compute_accidental_hits(
            tct, t.constant(np.asarray(sampled, np.int64)), T
        )
        assert idx.dtype == t.int32 and ids.dtype == t.int64 and w.dtype == t.float32
        case = {
            "id": f"hits-{len(cases)}",
            "true_classes": tc,
            "num_true": T,
            "sampled_candidates": sampled,
            "expected": {"indices": enc(idx), "ids": enc(ids), "weights": enc(w)},
        }
        if note:
            case["note"] = note
        cases.append(case)
    return cases


def embedding_lookup_cases():
    t = tf()
    rng = np.random.RandomState(7)
    configs = [  # rows, shards, strategy, ids shape, dtype, param row shape
        (13, 5, "div", (13,), "float32", (3,)),
        (13, 5, "mod", (13,), "float32", (3,)),
        (13, 5, "div", (4, 6), "float32", (2,)),
        (13, 5, "mod", (4, 6), "float64", (2,)),
        (7, 3, "div", (5,), "float32", (2,)),
        (7, 3, "mod", (5,), "float32", (2,)),
        (10, 4, "div", (9,), "float64", ()),
        (10, 4, "mod", (9,), "float32", ()),
        (9, 3, "div", (2, 2), "float32", (4,)),
        (9, 3, "mod", (0,), "float32", (4,)),
        (6, 6, "div", (6,), "float32", (1,)),
        (6, 6, "mod", (6,), "float32", (1,)),
        (8, 1, "div", (5,), "float32", (3,)),
        (8, 1, "mod", (5,), "float32", (3,)),
        (8, None, "div", (3, 3), "float32", (2,)),
        (23, 7, "div", (20,), "float32", (2,)),
    ]
    cases = []
    for rows, shards, strategy, ids_shape, dtype, rest in configs:
        full = rng.normal(size=(rows,) + rest).astype(dtype)
        ids = rng.randint(0, rows, size=ids_shape)
        if shards is None:
            params_np = full
        else:
            params_np = split_shards(full, shards, strategy)
        params_tf = (
            [t.constant(p) for p in params_np] if shards is not None else t.constant(params_np)
        )
        out = t.compat.v1.nn.embedding_lookup(
            params_tf, t.constant(ids.astype(np.int64)), partition_strategy=strategy
        )
        np.testing.assert_array_equal(out.numpy(), full[ids])  # shards follow the layout
        cases.append(
            {
                "id": f"lookup-{len(cases)}",
                "params": [enc(p) for p in params_np] if shards is not None else enc(params_np),
                "params_sharded": shards is not None,
                "dtype": dtype,
                "ids": ids.tolist(),
                "ids_shape": list(ids_shape),
                "partition_strategy": strategy,
                "expected": enc(out),
            }
        )
    return cases


DEFAULT_SAMPLER_CONFIGS = [  # B, T, S, C, D, seed
    (3, 1, 4, 10, 3, 17),
    (2, 2, 8, 50, 4, 2024),
    (4, 1, 20, 1000, 2, 99),
    (2, 3, 5, 8, 2, 31),
]


def default_sampler_inputs(cfg):
    B, T, S, C, D, seed = cfg
    rng = np.random.RandomState(seed)
    return {
        "batch": B,
        "num_true": T,
        "num_sampled": S,
        "num_classes": C,
        "dim": D,
        "seed": seed,
        "weights": enc(rng.normal(0, 0.5, size=(C, D)).astype(np.float32)),
        "biases": enc(rng.normal(0, 0.2, size=C).astype(np.float32)),
        "labels": rng.randint(0, min(C, 12), size=(B, T)).tolist(),
        "inputs": enc(rng.normal(size=(B, D)).astype(np.float32)),
    }


def default_sampler_loss_cases():
    t = tf()
    cases = []
    for cfg in DEFAULT_SAMPLER_CONFIGS:
        case = default_sampler_inputs(cfg)
        case["id"] = f"default-{len(cases)}"
        B, T, S, C, D, seed = cfg
        register_attrs("log_uniform", T, S, True, C, seed)
        args = dict(
            weights=t.constant(np.float32(case["weights"])),
            biases=t.constant(np.float32(case["biases"])),
            labels=t.constant(np.asarray(case["labels"], np.int64)),
            inputs=t.constant(np.float32(case["inputs"])),
            num_sampled=S,
            num_classes=C,
            num_true=T,
        )
        case["sampled_softmax_loss_calls"] = [
            enc(t.nn.sampled_softmax_loss(seed=seed, **args)) for _ in range(2)
        ]
        cases.append(case)
    return cases


def default_sampler_triples():
    """Run in a fresh process: the log-uniform calls the default sampler makes."""
    out = []
    for cfg in DEFAULT_SAMPLER_CONFIGS:
        case = default_sampler_inputs(cfg)
        B, T, S, C, D, seed = cfg
        out.append(
            [call_sampler("log_uniform", case["labels"], T, S, True, C, seed) for _ in range(2)]
        )
    return out


def full_loss_cases():
    t = tf()
    rng = np.random.RandomState(5150)
    configs = [  # B, C, rows, D, shards, strategy, dtype
        (3, 5, 5, 2, None, "div", "float32"),
        (4, 10, 12, 3, None, "div", "float32"),
        (2, 7, 7, 4, 3, "div", "float32"),
        (3, 9, 11, 2, 2, "mod", "float32"),
        (5, 6, 6, 3, None, "div", "float64"),
        (0, 4, 4, 2, None, "div", "float32"),
    ]
    cases = []
    for B, C, rows, D, shards, strategy, dtype in configs:
        W = rng.normal(0, 0.8, size=(rows, D)).astype(dtype)
        b = rng.normal(0, 0.3, size=rows).astype(dtype)
        X = rng.normal(size=(B, D)).astype(dtype)
        labels = rng.randint(0, C, size=(B, 1))
        if shards:
            w_sh, b_sh = split_shards(W, shards, strategy), split_shards(b, shards, strategy)
            ids = t.range(C, dtype=t.int64)
            W_full = t.compat.v1.nn.embedding_lookup(
                [t.constant(p) for p in w_sh], ids, partition_strategy=strategy
            )
            b_full = t.compat.v1.nn.embedding_lookup(
                [t.constant(p) for p in b_sh], ids, partition_strategy=strategy
            )
        else:
            W_full, b_full = t.constant(W[:C]), t.constant(b[:C])
        # The documented evaluation recipe (tf.nn.nce_loss / sampled_softmax_loss docstrings).
        logits = t.nn.bias_add(t.matmul(t.constant(X), t.transpose(W_full)), b_full)
        one_hot = t.one_hot(t.constant(labels[:, 0]), C, dtype=logits.dtype)
        sig = t.reduce_sum(
            t.nn.sigmoid_cross_entropy_with_logits(labels=one_hot, logits=logits), axis=1
        )
        soft = t.nn.softmax_cross_entropy_with_logits(labels=one_hot, logits=logits)
        cases.append(
            {
                "id": f"full-{len(cases)}",
                "dtype": dtype,
                "num_classes": C,
                "num_true": 1,
                "batch": B,
                "dim": D,
                "weights": [enc(p) for p in w_sh] if shards else enc(W),
                "weights_sharded": bool(shards),
                "biases": [enc(p) for p in b_sh] if shards else enc(b),
                "biases_sharded": bool(shards),
                "partition_strategy": strategy,
                "labels": labels.tolist(),
                "inputs": enc(X),
                "expected": {"full_sigmoid_loss": enc(sig), "full_softmax_loss": enc(soft)},
            }
        )
    return cases


# ---------------------------------------------------------------- spec sanity checks


def check_against_spec(data):
    problems = []

    def check(what, got, want, tol=None):
        got_a, want_a = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
        ok = got_a.shape == want_a.shape and (
            np.array_equal(got_a, want_a)
            if tol is None
            else np.allclose(got_a, want_a, rtol=tol, atol=tol)
        )
        print(
            ("spec OK:       " if ok else "SPEC MISMATCH: ")
            + what
            + ("" if ok else f" got {got} want {want}")
        )
        if not ok:
            problems.append(what)

    L = {c["id"]: c for c in data["losses"]}
    a, b = L["spec13.1-hits-False"]["expected"], L["spec13.1-hits-True"]["expected"]
    check(
        "13.1 logits",
        a["compute_sampled_logits"]["subtract_log_q_true"]["logits"],
        [
            [0.19314718, 0.19314718, -0.97685653, 1.60258508],
            [3.48629427, 2.94314718, 0.27314353, 0.72758508],
        ],
        1e-6,
    )
    check("13.1 nce", a["nce_loss"], [3.5011971, 4.9853783], 1e-6)
    check("13.1 softmax", a["sampled_softmax_loss"], [1.8569258, 0.52148086], 1e-6)
    check(
        "13.1 hits logit[0][1]",
        b["compute_sampled_logits"]["subtract_log_q_true"]["logits"][0][1],
        -3.4028235e38,
        1e-6,
    )
    check("13.1 hits nce", b["nce_loss"], [2.7068202, 4.9853783], 1e-6)
    check("13.1 hits softmax", b["sampled_softmax_loss"], [1.6871431, 0.52148086], 1e-6)
    gr = a["gradients"]["nce_loss"]["sum"]
    check("13.1 dW indices", gr["weights"]["indices"], [2, 0, 2, 1, 3])
    check(
        "13.1 dW values",
        gr["weights"]["values"],
        [
            [-0.2259314, 0.4518628],
            [-0.0594094, -0.0074262],
            [2.1739459, -0.3106526],
            [1.272487, -0.1315498],
            [1.76474, -0.6638106],
        ],
        2e-6,
    )
    check(
        "13.1 db values",
        gr["biases"]["values"],
        [-0.4518628, -0.0297047, 1.4980758, 0.8413805, 1.5066545],
        2e-6,
    )
    check(
        "13.1 dX", gr["inputs"]["values"], [[-0.7361048, 0.7859802], [0.2459587, 1.8549408]], 2e-6
    )

    S = [c for c in data["samplers"] if "note" in c]

    def first(note, kind, unique, seed=None):
        for c in S:
            if (
                c["note"] == note
                and c["sampler"] == kind
                and c["unique"] == unique
                and (seed is None or c["seed"] == seed)
            ):
                return c["calls"]
        raise KeyError((note, kind, unique))

    c = first("spec 13.2", "log_uniform", False)[0]
    check("13.2 log-uniform non-unique sampled", c["sampled_candidates"], [0, 10, 0, 6, 2, 9])
    check(
        "13.2 Q_s",
        c["sampled_expected_count"],
        np.float32([1.3660215, 0.17147788, 1.3660215, 0.2631573, 0.56695014, 0.18783277]),
    )
    # docs/semantics.md prints 7-8 significant digits (0.09615333 is float32 0.096153334 rounded),
    # so compare within 1e-7 relative here; the tests compare TF's values bit-exactly.
    check(
        "13.2 Q_true",
        np.ravel(c["true_expected_count"]),
        np.float32([1.3660215, 0.43976068, 0.09615333, 0.2321212]),
        1e-7,
    )
    check(
        "13.2 log-uniform unique",
        first("spec 13.2", "log_uniform", True)[0]["sampled_candidates"],
        [0, 10, 6, 2, 9, 11],
    )
    check(
        "13.2 uniform non-unique",
        first("spec 13.2", "uniform", False)[0]["sampled_candidates"],
        [15, 0, 3, 8, 17, 14],
    )
    u = first("spec 13.2", "uniform", True)[0]
    check("13.2 uniform unique", u["sampled_candidates"], [15, 0, 3, 8, 17, 14])
    check("13.2 uniform unique EC", u["sampled_expected_count"], np.float32([0.3] * 6))
    c = first("spec 13.3", "log_uniform", True)[0]
    check("13.3 sampled", c["sampled_candidates"], [0, 4, 7, 6, 1, 15])
    check(
        "13.3 Q_true",
        np.ravel(c["true_expected_count"]),
        np.float32([0.87340343, 0.45607644, 0.12123945, 0.27067852]),
    )
    calls = first("spec 13.4", "log_uniform", False)
    check(
        "13.4 three calls",
        [x["sampled_candidates"] for x in calls],
        [[411, 0, 23, 316, 1, 28], [7, 465, 287, 0, 8, 0], [1, 5, 598, 0, 22, 709]],
    )
    g = [c for c in data["samplers"] if c.get("global_seed") == 11 and c.get("op_seed") == 5][0]
    check("13.4 global seed (11,5)", g["calls"][0]["sampled_candidates"], [0, 180, 117, 32, 44, 7])
    F = [c for c in data["fixed_unigram"] if c.get("note") == "spec 13.5"]
    for c, row in zip(F, SPEC_FIXED_TABLE):
        check(f"13.5 fixed unigram {row[:4]}", c["calls"][0]["sampled_candidates"], row[4])
    calls = first("spec 13.6", "learned_unigram", False)
    check(
        "13.6 learned sampled",
        [x["sampled_candidates"] for x in calls],
        [[2, 4, 3, 2], [2, 0, 1, 4], [2, 2, 4, 2]],
    )
    check(
        "13.6 learned EC",
        [x["sampled_expected_count"] for x in calls],
        [[0.8] * 4, [1.5, 0.5, 0.5, 1], [1.818182, 1.818182, 1.090909, 1.818182]],
        1e-6,
    )
    h = [c for c in data["accidental_hits"] if c.get("note") == "spec 13.7"][0]["expected"]
    check("13.7 hits indices", h["indices"], [0, 0, 1, 1, 3, 3])
    check("13.7 hits ids", h["ids"], [1, 3, 3, 3, 4, 1])
    check("13.7 hits weights", h["weights"], [-FLT_MAX] * 6)
    q = [c for c in data["fixed_unigram"] if c.get("note", "").startswith("spec 14.6")][0]
    check("14.6 quirk table size", q["range_max"], 4)
    return problems


# ----------------------------------------------------------------------------- main


def run_worker(name):
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", name],
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--worker",
        choices=["global_seed", "default_triples"],
        help="internal: record one section in this fresh process and print JSON",
    )
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    if args.worker == "global_seed":
        print(json.dumps(global_seed_sampler_cases()))
        return 0
    if args.worker == "default_triples":
        print(json.dumps(default_sampler_triples()))
        return 0

    t = tf()
    data = {
        "tf_version": t.__version__,
        "numpy_version": np.__version__,
        "generated_by": "tests/tf_reference/record_tf.py",
        "flt_max": FLT_MAX,
    }
    data["losses"] = loss_cases()
    data["accidental_hits"] = accidental_hits_cases()
    data["embedding_lookup"] = embedding_lookup_cases()
    data["full_losses"] = full_loss_cases()
    data["samplers"] = sampler_cases()
    with tempfile.TemporaryDirectory() as tmpdir:
        data["fixed_unigram"] = fixed_unigram_cases(tmpdir)
    default_cases = default_sampler_loss_cases()
    # Separate fresh processes: global-seed samplers and the default sampler's triples.
    data["samplers"] += run_worker("global_seed")
    triples = run_worker("default_triples")
    for case, calls in zip(default_cases, triples):
        case["log_uniform_calls"] = calls
        # Consistency: the loss from the recorded triple equals the default-sampler loss.
        for k in range(2):
            sv = calls[k]
            loss = t.nn.sampled_softmax_loss(
                weights=t.constant(np.float32(case["weights"])),
                biases=t.constant(np.float32(case["biases"])),
                labels=t.constant(np.asarray(case["labels"], np.int64)),
                inputs=t.constant(np.float32(case["inputs"])),
                num_sampled=case["num_sampled"],
                num_classes=case["num_classes"],
                num_true=case["num_true"],
                sampled_values=(
                    t.constant(np.int64(sv["sampled_candidates"])),
                    t.constant(np.float32(sv["true_expected_count"])),
                    t.constant(np.float32(sv["sampled_expected_count"])),
                ),
            )
            np.testing.assert_allclose(
                loss.numpy(), case["sampled_softmax_loss_calls"][k], rtol=1e-6
            )
    data["default_sampler_losses"] = default_cases

    problems = check_against_spec(data)
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    with open(args.out, "w") as f:
        f.write(text)
        f.write("\n")
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    print(f"wrote {args.out} ({len(text) / 1e6:.2f} MB): {counts}")
    if problems:
        print(f"{len(problems)} SPEC MISMATCH(ES): {problems}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
