"""What ``precision="bfloat16"`` costs in accuracy, against float32 (``rustnce``'s default).

1. **Errors at the benchmark's sizes.** For the configurations of ``benches/compare.py``
   (w2v-small, w2v-large, multi-true; random weights scaled by ``1/sqrt(dim)``, Zipf labels,
   log-uniform candidates), both losses and every gradient of a bfloat16 call and of a float32
   call are compared with the NumPy reference in float64 on the same inputs. Printed per
   output: the largest error relative to the output's largest entry, and the root mean square
   of the errors relative to the root mean square of the output. (The reference only reads the
   rows a call touches, so the weights are gathered into a compact matrix first; the
   candidates and their expected counts are passed as given, so nothing else changes.)

2. **Word vectors.** Skip-gram embeddings trained by ``rustnce.nce_sgd_step`` (the loop of
   TensorFlow's word2vec tutorial: the centers' input rows gathered as ``inputs``, the context
   as the label, ``num_sampled`` log-uniform candidates per batch, the mean loss, plain SGD on
   both tables) on the first ``--tokens`` tokens of ``--corpus``, twice from the same seed:
   float32 and bfloat16, everything else identical. Printed: the last epoch's mean loss and
   WordSim-353, SimLex-999 (Spearman) and Google analogies (top 30,000 words) from gensim's
   test data.

    python benches/bfloat16_accuracy.py --corpus /path/to/text.txt
    python benches/bfloat16_accuracy.py --skip-training
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import rustnce
import rustnce.reference as reference
from rustnce import _rustnce
from rustnce.word2vec.corpus import load_corpus, read_sentences
from rustnce.word2vec.evaluation import (
    read_analogies,
    read_similarity_pairs,
    word_analogies,
    word_similarity,
)

CONFIGS = {
    # name: (classes, dim, batch, num_sampled, num_true), as benches/compare.py
    "w2v-small": (100_000, 128, 1_024, 64, 1),
    "w2v-large": (1_000_000, 300, 4_096, 128, 1),
    "multi-true": (200_000, 128, 2_048, 64, 5),
}
GRADIENTS = {
    "nce": (rustnce.nce_loss_and_gradients, reference.nce_loss_and_gradients),
    "sampled softmax": (
        rustnce.sampled_softmax_loss_and_gradients,
        reference.sampled_softmax_loss_and_gradients,
    ),
}


def compact_problem(config, seed=0):
    """A problem of the configuration's shape whose weights hold only the rows it touches."""
    classes, dim, batch, num_sampled, num_true = config
    rng = np.random.default_rng(seed)
    u = rng.random((batch, num_true))
    labels = np.clip(np.floor(np.exp(u * np.log(classes + 1.0))).astype(np.int64) - 1, 0, None)
    sampled, true_counts, sampled_counts = rustnce.log_uniform_candidate_sampler(
        labels, num_true, num_sampled, True, classes, seed=(1234, 5678)
    )
    used, compact = np.unique(np.concatenate([labels.ravel(), sampled]), return_inverse=True)
    rows = len(used)
    weights = (rng.standard_normal((rows, dim)) / np.sqrt(dim)).astype(np.float32)
    return dict(
        weights=weights,
        biases=(0.1 * rng.standard_normal(rows)).astype(np.float32),
        labels=compact[: labels.size].reshape(labels.shape),
        inputs=rng.standard_normal((batch, dim)).astype(np.float32),
        num_sampled=num_sampled,
        num_classes=rows,
        num_true=num_true,
        sampled_values=(compact[labels.size :], true_counts, sampled_counts),
    )


def float64(kwargs):
    out = dict(kwargs)
    for name in ("weights", "biases", "inputs"):
        out[name] = kwargs[name].astype(np.float64)
    candidates, true_counts, sampled_counts = kwargs["sampled_values"]
    out["sampled_values"] = (
        candidates,
        true_counts.astype(np.float64),
        sampled_counts.astype(np.float64),
    )
    return out


def errors(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.abs(want).max()
    rms = np.sqrt(np.mean(want**2))
    difference = got - want
    return np.abs(difference).max() / scale, np.sqrt(np.mean(difference**2)) / rms


def error_table():
    print("## Errors against the float64 reference\n")
    print(
        "Largest error / largest |entry|, and RMS error / RMS entry, of each output; "
        "float32 then bfloat16.\n"
    )
    print("| config | loss | output | float32 max | float32 RMS | bfloat16 max | bfloat16 RMS |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, config in CONFIGS.items():
        kwargs = compact_problem(config)
        num_true, batch = config[4], config[2]
        for loss, (call, reference_call) in GRADIENTS.items():
            hits = loss == "sampled softmax"
            ref = reference_call(**float64(kwargs), remove_accidental_hits=hits)
            results = {
                precision: call(**kwargs, remove_accidental_hits=hits, precision=precision)
                for precision in ("float32", "bfloat16")
            }
            labels_end = batch * num_true
            outputs = {
                "loss": (lambda g: g.loss, ref["loss"]),
                "inputs gradient": (lambda g: g.inputs, ref["inputs_grad"]),
                "label rows' weight gradient": (
                    lambda g, end=labels_end: g.weights.values[:end],
                    ref["weight_values"][:labels_end],
                ),
                "sampled rows' weight gradient": (
                    lambda g, end=labels_end: g.weights.values[end:],
                    ref["weight_values"][labels_end:],
                ),
                "bias gradient": (lambda g: g.biases.values, ref["bias_values"]),
            }
            for output, (select, want) in outputs.items():
                cells = []
                for precision in ("float32", "bfloat16"):
                    largest, rms = errors(select(results[precision]), want)
                    cells += [f"{largest:.1e}", f"{rms:.1e}"]
                print(f"| {name} | {loss} | {output} | " + " | ".join(cells) + " |")
    print()


def train(corpus, vocabulary, precision, args):
    words, dim = len(vocabulary), args.dim
    rng = np.random.default_rng(args.seed)
    # word2vec's initialisation: small input vectors, zero output vectors.
    inputs = ((rng.random((words, dim)) - 0.5) / dim).astype(np.float32)
    outputs = np.zeros((words, dim), np.float32)
    # The inputs gradient is of the mean loss: each center row moves by `input_rate` times
    # its own pair's gradient, as in word2vec.
    input_scale = -args.input_rate * (args.batch if args.upstream == "mean" else 1)
    # NCE's biases start at the log unigram probability (as the trainer starts them), so that
    # the first logits are calibrated against the noise.
    counts = vocabulary.counts.astype(np.float64)
    biases = np.log(counts / counts.sum()).astype(np.float32)
    losses = []
    for epoch in range(args.epochs):
        centers, contexts = _rustnce.skipgram_pairs(
            corpus.ids, corpus.sentences, vocabulary.counts, args.window, 1e-3, args.seed + epoch
        )
        losses = []
        for k, start in enumerate(range(0, len(centers), args.batch)):
            center = centers[start : start + args.batch].astype(np.int64)
            label = contexts[start : start + args.batch].astype(np.int64)[:, None]
            sampled = rustnce.log_uniform_candidate_sampler(
                label, 1, args.num_sampled, True, words, seed=(epoch + 1, k)
            )
            loss, gradient = rustnce.nce_sgd_step(
                outputs,
                biases,
                label,
                inputs[center],
                args.num_sampled,
                words,
                args.rate,
                sampled_values=sampled,
                upstream=args.upstream,
                precision=precision,
            )
            np.add.at(inputs, center, input_scale * gradient)
            losses.append(float(loss.mean()))
    return inputs, float(np.mean(losses))


def quality_table(args):
    sentences = read_sentences(args.corpus)
    kept, tokens = [], 0
    for sentence in sentences:
        if tokens >= args.tokens:
            break
        kept.append(sentence)
        tokens += len(sentence)
    vocabulary, corpus = load_corpus(kept, min_count=5)
    data = args.test_data
    similarity = {
        "WS353": read_similarity_pairs(os.path.join(data, "wordsim353.tsv")),
        "SimLex": read_similarity_pairs(os.path.join(data, "simlex999.txt")),
    }
    analogies = read_analogies(os.path.join(data, "questions-words.txt"))
    print(
        f"## Word vectors: {tokens:,} tokens of {os.path.basename(args.corpus)}, "
        f"{len(vocabulary):,} words (min count 5), dim {args.dim}, window {args.window}, "
        f"batch {args.batch}, {args.num_sampled} candidates per batch, rate {args.rate} "
        f"({args.upstream} of the batch's losses), "
        f"{args.epochs} epochs\n"
    )
    print("| precision | seconds | last epoch's mean loss | WS353 | SimLex | analogies |")
    print("|---|---:|---:|---:|---:|---:|")
    for precision in ("float32", "bfloat16"):
        start = time.perf_counter()
        vectors, loss = train(corpus, vocabulary, precision, args)
        seconds = time.perf_counter() - start
        scores = [
            word_similarity(vectors, vocabulary, pairs).spearman for pairs in similarity.values()
        ]
        accuracy = word_analogies(vectors, vocabulary, analogies).accuracy
        print(
            f"| {precision} | {seconds:.1f} | {loss:.4f} | {scores[0]:.3f} | {scores[1]:.3f} "
            f"| {accuracy:.3f} |"
        )
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", help="a text file, one sentence per line")
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--num-sampled", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--upstream", choices=("mean", "sum"), default="mean")
    parser.add_argument("--input-rate", type=float, default=0.025, help="per pair")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-errors", action="store_true")
    parser.add_argument(
        "--test-data",
        default=None,
        help="directory with wordsim353.tsv, simlex999.txt, questions-words.txt "
        "(default: gensim's test data)",
    )
    args = parser.parse_args()
    if not rustnce.bfloat16_available():
        print(
            "note: this processor lacks AVX-512 BF16; precision='bfloat16' computes in "
            "float32 here, so both columns agree"
        )
    if not args.skip_errors:
        error_table()
    if args.skip_training:
        return
    if args.corpus is None:
        parser.error("--corpus is needed for the word-vector comparison (or --skip-training)")
    if args.test_data is None:
        import gensim.test.utils

        args.test_data = os.path.dirname(gensim.test.utils.datapath("wordsim353.tsv"))
    quality_table(args)


if __name__ == "__main__":
    main()
