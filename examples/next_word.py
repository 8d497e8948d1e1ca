"""A small next-word model trained with rustnce.torch.SampledSoftmaxLoss.

The corpus is generated: a Markov chain over a Zipfian vocabulary in which every word has a
handful of likely successors, so the best achievable perplexity is known. The model embeds the
previous word, passes it through a hidden layer, and is trained with a sampled softmax over the
vocabulary (``num_sampled`` log-uniform candidates per batch, SparseAdam for the embeddings
and the loss's output layer, Adam for the hidden layer). Evaluation uses the full softmax.

    python examples/next_word.py                 # about ten seconds on two cores
    python examples/next_word.py --epochs 10 --vocabulary 20000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import rustnce
import rustnce.torch


def make_corpus(vocabulary: int, words: int, successors: int, seed: int):
    """A Markov chain: word ``w`` is followed by one of ``successors`` words chosen with
    Zipfian preference (most frequent ids first), with probabilities ``1/2, 1/4, ...``.
    Returns the word ids and the chain's transition table."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, vocabulary + 1)
    zipf /= zipf.sum()
    table = rng.choice(vocabulary, size=(vocabulary, successors), p=zipf)
    probabilities = 0.5 ** np.arange(1, successors + 1)
    probabilities /= probabilities.sum()
    choices = rng.choice(successors, size=words, p=probabilities)
    ids = np.empty(words, dtype=np.int64)
    ids[0] = 0
    for position in range(1, words):
        ids[position] = table[ids[position - 1], choices[position]]
    return ids, table, probabilities


def true_perplexity(ids: np.ndarray, table: np.ndarray, probabilities: np.ndarray) -> float:
    """The chain's own perplexity on the pairs (a successor listed twice adds up)."""
    previous, following = ids[:-1], ids[1:]
    p = ((table[previous] == following[:, None]) * probabilities).sum(1)
    return float(np.exp(-np.log(p).mean()))


class NextWord(torch.nn.Module):
    def __init__(self, vocabulary: int, dim: int, num_sampled: int, seed: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, dim, sparse=True)
        self.hidden = torch.nn.Linear(dim, dim)
        self.loss = rustnce.torch.SampledSoftmaxLoss(
            vocabulary, dim, num_sampled, sparse=True, seed=seed
        )

    def features(self, previous: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.hidden(self.embedding(previous)))

    def forward(self, previous: torch.Tensor, following: torch.Tensor) -> torch.Tensor:
        return self.loss(self.features(previous), following)

    @torch.no_grad()
    def perplexity(self, previous: torch.Tensor, following: torch.Tensor) -> float:
        """Full-softmax perplexity over the whole vocabulary."""
        total = 0.0
        for start in range(0, len(previous), 4096):
            batch = slice(start, start + 4096)
            logits = self.features(previous[batch]) @ self.loss.weight.T + self.loss.bias
            total += torch.nn.functional.cross_entropy(
                logits, following[batch], reduction="sum"
            ).item()
        return math.exp(total / len(previous))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary", type=int, default=5000)
    parser.add_argument("--words", type=int, default=200_000)
    parser.add_argument("--successors", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--num-sampled", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="PyTorch intra-op threads (default 1: this model's own PyTorch ops are small, and "
        "a larger OpenMP pool keeps spinning on the cores rustnce's loss needs next)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    ids, table, probabilities = make_corpus(args.vocabulary, args.words, args.successors, args.seed)
    split = int(0.9 * len(ids))
    train = torch.from_numpy(ids[:split])
    test = torch.from_numpy(ids[split:])
    counts = np.bincount(ids[:split], minlength=args.vocabulary) + 1.0
    unigram = float(np.exp(-np.log(counts[ids[split + 1 :]] / counts.sum()).mean()))

    model = NextWord(args.vocabulary, args.dim, args.num_sampled, args.seed)
    sparse = [model.embedding.weight, model.loss.weight, model.loss.bias]
    optimizers = [
        torch.optim.SparseAdam(sparse, lr=0.01),
        torch.optim.Adam(model.hidden.parameters(), lr=0.01),
    ]
    print(
        f"vocabulary {args.vocabulary}, {len(train):,} training pairs, "
        f"num_sampled {args.num_sampled}, rustnce threads {rustnce.get_num_threads()}, "
        f"torch threads {torch.get_num_threads()}"
    )
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(train) - 1)
        for first in range(0, len(order), args.batch):
            positions = order[first : first + args.batch]
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss = model(train[positions], train[positions + 1])
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
        print(
            f"epoch {epoch + 1}: sampled loss {loss.item():.3f}, test perplexity "
            f"{model.perplexity(test[:-1], test[1:]):.1f} ({time.perf_counter() - start:.1f} s)"
        )
    print(f"perplexity unigram: {unigram:.2f}")
    print(f"perplexity true: {true_perplexity(ids[split:], table, probabilities):.2f}")
    print(f"perplexity model: {model.perplexity(test[:-1], test[1:]):.2f}")


if __name__ == "__main__":
    main()
