"""The word2vec CLI with its defaults on adversarial corpora at millions of tokens and on real
corpora given as arguments; prints one line per corpus with the exit code, the loss per pair of
the first and last epoch and the time. Not part of CI (minutes).

    python benches/word2vec_stability.py --tokens 3000000 gcide.txt pydocs.txt
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from rustnce.word2vec import adversarial


def run_cli(corpus: str, extra: list[str], output: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    command = [sys.executable, "-m", "rustnce", "--corpus", corpus, "--output", output]
    process = subprocess.run([*command, "--quiet", *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    found = re.search(r"loss per pair ([\d.]+) -> ([\d.]+)", process.stdout)
    summary = f"loss {found.group(1)} -> {found.group(2)}" if found else process.stderr.strip()
    return process.returncode, summary, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", help="real corpora (text, one sentence a line)")
    parser.add_argument("--tokens", type=int, default=3_000_000)
    parser.add_argument("--vocabulary", type=int, default=1_000_000, help="huge-vocabulary words")
    parser.add_argument(
        "--update", default=None, help="the --update to test (default: the CLI's own default)"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="pass --deterministic to every run"
    )
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "vectors.txt")
        cases = [(path, path, []) for path in args.corpora]
        for name, (generate, extra) in sorted(adversarial.ADVERSARIAL.items()):
            path = os.path.join(directory, f"{name}.txt")
            lines = generate(args.tokens)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            cases.append((name, path, extra))
        path = os.path.join(directory, "million-words.txt")
        with open(path, "w", encoding="utf-8") as handle:
            lines = adversarial.huge_vocabulary(6 * args.vocabulary, args.vocabulary)
            handle.write("\n".join(lines) + "\n")
        cases.append((f"{args.vocabulary:,}-word vocabulary", path, ["--min-count", "1"]))
        for name, path, extra in cases:
            options = [*extra, *(["--update", args.update] if args.update else [])]
            options += ["--deterministic"] if args.deterministic else []
            code, summary, seconds = run_cli(path, options, output)
            failures += code != 0
            print(f"{name:32s} exit {code}  {summary}  ({seconds:.0f} s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
