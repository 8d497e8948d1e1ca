"""Peak extra memory of rustnce's NCE forward + backward on a large weight matrix.

For each measurement a fresh Python process builds a ``[classes, dim]`` float32 weight matrix
(1,000,000 x 300 = 1.2 GB by default), the biases, inputs, labels and sampled values, reads
its peak RSS (``resource.getrusage(...).ru_maxrss``), makes ONE call and reads the peak RSS
again. The difference is what the call needed at its peak on top of the data (outputs it
returns included). A fresh process per measurement keeps an earlier peak from hiding a later
one; the inputs are built without temporaries larger than a few MB so that the peak before
the call is the data itself.

    python benches/memory_peak.py                 # the default 1,000,000 x 300, batch 4096
    python benches/memory_peak.py --classes 100000 --dim 128 --batch 1024 --num-sampled 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

BUDGET_MB = 64.0

MODES = {
    "gradients": "nce_loss_and_gradients, touching loss, inputs, weights, biases, merged(), "
    "weight_shards, bias_shards",
    "accumulate": "nce_loss_and_gradients + accumulate() into caller-owned dense gradient "
    "arrays (allocated and touched before the call)",
    "sgd_step": "nce_sgd_step (learning_rate=0.01, in place)",
}


def _peak_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(mode: str, classes: int, dim: int, batch: int, num_sampled: int, num_true: int):
    import numpy as np

    import rustnce

    rng = np.random.default_rng(0)
    weights = np.empty((classes, dim), dtype=np.float32)
    chunk = 1 << 14  # fill in chunks: no float64 temporary of the whole matrix
    for start in range(0, classes, chunk):
        rows = weights[start : start + chunk]
        rng.standard_normal(rows.shape, dtype=np.float32, out=rows)
        rows *= np.float32(1.0 / np.sqrt(dim))
    biases = rng.standard_normal(classes, dtype=np.float32)
    inputs = rng.standard_normal((batch, dim), dtype=np.float32)
    u = rng.random((batch, num_true))
    labels = np.clip(np.floor(np.exp(u * np.log(classes + 1.0))) - 1, 0, classes - 1)
    labels = labels.astype(np.int64)
    sampled_values = rustnce.log_uniform_candidate_sampler(
        labels, num_true, num_sampled, True, classes, seed=(1234, 5678)
    )
    weights_gradient = biases_gradient = None
    if mode == "accumulate":
        weights_gradient = np.ones_like(weights)  # written: resident before the call
        biases_gradient = np.ones_like(biases)
    del u, rows

    rss_before = _rss_mb()
    peak_before = _peak_mb()
    if mode == "sgd_step":
        kept = rustnce.nce_sgd_step(
            weights,
            biases,
            labels,
            inputs,
            num_sampled,
            classes,
            0.01,
            num_true=num_true,
            sampled_values=sampled_values,
        )
    else:
        g = rustnce.nce_loss_and_gradients(
            weights,
            biases,
            labels,
            inputs,
            num_sampled,
            classes,
            num_true=num_true,
            sampled_values=sampled_values,
        )
        if mode == "accumulate":
            g.accumulate(weights_gradient, biases_gradient, scale=-0.01)
            kept = (g.loss, g.inputs)
        else:
            kept = (g.loss, g.inputs, g.weights, g.biases, g.merged())
            kept += (g.weight_shards, g.bias_shards)
    peak_after = _peak_mb()
    rss_after = _rss_mb()
    assert kept is not None
    print(
        json.dumps(
            {
                "weights_mb": weights.nbytes / 2**20,
                "rss_before_mb": rss_before,
                "peak_before_mb": peak_before,
                "peak_after_mb": peak_after,
                "rss_after_mb": rss_after,
                "threads": rustnce.get_num_threads(),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--num-sampled", type=int, default=128)
    parser.add_argument("--num-true", type=int, default=1)
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = (args.classes, args.dim, args.batch, args.num_sampled, args.num_true)
    if args.child:
        child(args.child, *sizes)
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    print(
        f"weights {args.classes:,} x {args.dim} float32 ({args.classes * args.dim * 4 / 1e9:.2f} "
        f"GB), batch {args.batch}, num_sampled {args.num_sampled}, num_true {args.num_true}; "
        f"RUSTNCE_NUM_THREADS={os.environ.get('RUSTNCE_NUM_THREADS', '(unset)')}"
    )
    out_rows = args.batch * args.num_true + args.num_sampled
    print(
        "for scale: the TF-form weight gradient values are "
        f"{out_rows * args.dim * 4 / 2**20:.1f} MB, the inputs gradient "
        f"{args.batch * args.dim * 4 / 2**20:.1f} MB"
    )
    failed = False
    for mode in modes:
        command = [sys.executable, os.path.abspath(__file__), "--child", mode]
        command += [
            f"--classes={args.classes}",
            f"--dim={args.dim}",
            f"--batch={args.batch}",
            f"--num-sampled={args.num_sampled}",
            f"--num-true={args.num_true}",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{mode}: child process failed ({done.returncode}):\n{done.stderr}")
            failed = True
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        increase = r["peak_after_mb"] - r["peak_before_mb"]
        verdict = "yes" if increase < BUDGET_MB else "NO"
        print(f"{mode}: {MODES[mode]}")
        print(
            f"  peak RSS increase {increase:.1f} MB (under {BUDGET_MB:.0f} MB: {verdict}); "
            f"peak {r['peak_before_mb']:.0f} -> {r['peak_after_mb']:.0f} MB, "
            f"RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MB, "
            f"{r['threads']} threads"
        )
        blind = r["peak_before_mb"] - r["rss_before_mb"]
        if blind > 8:
            print(
                f"  note: the peak before the call was {blind:.0f} MB above the RSS then, so "
                "an increase up to that much would not show"
            )
        failed |= increase >= BUDGET_MB
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
