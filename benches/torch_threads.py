"""Thread pools of rustnce and PyTorch in one training step: do they get in each other's way?

rustnce computes on its own pool (``rustnce.set_num_threads``), PyTorch on its intra-op pool
(``torch.set_num_threads``, OpenMP). In a training step they take turns — PyTorch's layers,
then rustnce's loss, then PyTorch's backward and optimizer — so they never compute at the same
time, but each pool's idle threads can still spin on cores the other wants. This times a
SampledSoftmaxLoss training step (embedding, hidden layer, loss, backward, SparseAdam + Adam)
for each pair of thread counts, interleaved round by round, and prints medians and ratios to
the default (both pools as large as the machine).

    python benches/torch_threads.py
    python benches/torch_threads.py --configs small --rounds 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import rustnce
import rustnce.torch

CONFIGS = {
    # vocabulary, dim, batch, num_sampled
    "small": (5_000, 64, 256, 64),
    "large": (200_000, 300, 4_096, 128),
}


def make_step(vocabulary: int, dim: int, batch: int, num_sampled: int):
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(vocabulary, dim, sparse=True)
    hidden = torch.nn.Linear(dim, dim)
    loss = rustnce.torch.SampledSoftmaxLoss(vocabulary, dim, num_sampled, sparse=True, seed=0)
    optimizers = [
        torch.optim.SparseAdam([embedding.weight, loss.weight, loss.bias], lr=1e-3),
        torch.optim.Adam(hidden.parameters(), lr=1e-3),
    ]
    previous = torch.randint(0, vocabulary, (batch,))
    following = torch.randint(0, vocabulary, (batch,))

    def step() -> None:
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss(torch.tanh(hidden(embedding(previous))), following).backward()
        for optimizer in optimizers:
            optimizer.step()

    return step


def time_steps(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="small,large")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    pairs = sorted({(cores, cores), (1, cores), (cores, 1), (1, 1)}, reverse=True)
    print(
        f"{cores} cores; torch {torch.__version__} "
        f"(parallel backend: {torch.__config__.parallel_info().splitlines()[0]}); "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    for name in args.configs.split(","):
        step = make_step(*CONFIGS[name])
        for _ in range(3):
            step()
        start = time.perf_counter()
        step()
        steps = max(3, int(args.seconds / max(time.perf_counter() - start, 1e-6)))
        samples: dict[tuple[int, int], list[float]] = {pair: [] for pair in pairs}
        for _ in range(args.rounds):
            for pair in pairs:
                torch.set_num_threads(pair[0])
                rustnce.set_num_threads(pair[1])
                step()  # settle the pools at their new sizes
                samples[pair].append(time_steps(step, steps))
        base = statistics.median(samples[(cores, cores)])
        print(f"== {name}: vocabulary, dim, batch, num_sampled = {CONFIGS[name]}")
        print("  torch threads  rustnce threads  median ms/step  min ms/step  vs default")
        for pair in pairs:
            median = statistics.median(samples[pair])
            print(
                f"  {pair[0]:>13}  {pair[1]:>15}  {median:>14.2f}  {min(samples[pair]):>11.2f}"
                f"  {base / median:>9.2f}x"
            )
    torch.set_num_threads(cores)
    rustnce.set_num_threads(0)
    print(f"load average after: {os.getloadavg()[0]:.1f} (other processes share the machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
