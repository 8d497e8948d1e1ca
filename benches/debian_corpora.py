"""The real English corpora of the word2vec benchmarks, made from Debian packages: downloads
each package with ``apt-get download`` (no root needed, no installation), unpacks it with
``dpkg -x`` and writes its text as lower-case words, one dictionary entry line, gloss or
paragraph per line. Not part of CI (it needs Debian's package index: ``apt-get update``).

    python benches/debian_corpora.py --output-dir corpora            # all five
    python benches/debian_corpora.py --output-dir corpora perldoc     # one

| corpus | package | text |
|---|---|---|
| gcide | dict-gcide | GNU's Collaborative International Dictionary of English, markup removed |
| wordnet | wordnet-base | WordNet's glosses and example sentences |
| pydocs | python3.11-doc | Python's HTML documentation, one paragraph a line |
| perldoc | perl-doc | Perl's POD documentation: prose paragraphs, no commands or code |
| handbook | debian-handbook | The Debian Administrator's Handbook, English HTML |

Each file is written to a temporary name beside it and renamed into place.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import html
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
TAG = re.compile(r"<[^>]*>")
# Where an HTML page breaks its text into paragraphs.
PARAGRAPH_END = re.compile(r"</p>|<br\s*/?>|</li>|</h\d>|</dd>|</dt>|</pre>")


def words(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def html_paragraphs(paths: list[str], drop: str = "script|style") -> Iterator[str]:
    for path in sorted(paths):
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        text = re.sub(rf"(?s)<({drop})[^>]*>.*?</\1>", " ", text)
        for paragraph in PARAGRAPH_END.split(text):
            yield words(html.unescape(TAG.sub(" ", paragraph)))


def gcide(root: str) -> Iterator[str]:
    (path,) = glob.glob(os.path.join(root, "usr/share/dictd/gcide.dict.dz"))
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        text = TAG.sub(" ", handle.read())  # markup can span lines
    for line in text.splitlines():
        yield words(line)


def wordnet(root: str) -> Iterator[str]:
    for part in ("noun", "verb", "adj", "adv"):
        path = os.path.join(root, f"usr/share/wordnet/data.{part}")
        with open(path, encoding="latin-1") as handle:
            for line in handle:
                # Lines starting with spaces are the licence; a gloss follows "|".
                if line.startswith("  ") or "|" not in line:
                    continue
                for piece in line.split("|", 1)[1].split(";"):
                    yield words(piece)


def pydocs(root: str) -> Iterator[str]:
    pages = glob.glob(os.path.join(root, "usr/share/doc/python3.11/html/**/*.html"), recursive=True)
    yield from html_paragraphs(pages)


def perldoc(root: str) -> Iterator[str]:
    pods = glob.glob(os.path.join(root, "usr/share/perl/**/*.pod"), recursive=True)
    for path in sorted(pods):
        paragraph: list[str] = []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in [*handle, "\n"]:
                if not line.strip():
                    yield words(" ".join(paragraph))
                    paragraph = []
                elif not line.startswith(("=", " ", "\t")):  # not a command, not code
                    paragraph.append(re.sub(r"[A-Z]<([^<>]*)>", r"\1", line))


def handbook(root: str) -> Iterator[str]:
    pages = glob.glob(os.path.join(root, "usr/share/doc/debian-handbook/html/en-US/*.html"))
    yield from html_paragraphs(pages, drop="script|style|pre")


# name: (package, extractor, fewest words a line keeps)
CORPORA: dict[str, tuple[str, Callable[[str], Iterator[str]], int]] = {
    "gcide": ("dict-gcide", gcide, 1),
    "wordnet": ("wordnet-base", wordnet, 1),
    "pydocs": ("python3.11-doc", pydocs, 1),
    "perldoc": ("perl-doc", perldoc, 3),
    "handbook": ("debian-handbook", handbook, 3),
}


def unpacked(package: str, scratch: str) -> str:
    """The package's files under a fresh directory of ``scratch``."""
    download = subprocess.run(
        ["apt-get", "download", package], cwd=scratch, capture_output=True, text=True
    )
    if download.returncode != 0:
        raise SystemExit(
            f"apt-get download {package} failed: {download.stderr.strip()} "
            "(run apt-get update first)"
        )
    (deb,) = glob.glob(os.path.join(scratch, f"{package}_*.deb"))
    root = os.path.join(scratch, package)
    subprocess.run(["dpkg", "-x", deb, root], check=True)
    return root


def write_corpus(lines: Iterator[str], fewest: int, path: str) -> tuple[int, int]:
    """Writes the lines with at least ``fewest`` words; returns (lines, words)."""
    count = tokens = 0
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=directory, prefix=".corpus-", delete=False
    ) as handle:
        try:
            for line in lines:
                n = line.count(" ") + 1 if line else 0
                if n >= fewest:
                    handle.write(line + "\n")
                    count += 1
                    tokens += n
        except BaseException:
            os.unlink(handle.name)
            raise
    os.replace(handle.name, path)
    return count, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(CORPORA)} (default: all)")
    parser.add_argument("--output-dir", default=".")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in CORPORA]
    if unknown:
        parser.error(f"unknown corpus {unknown[0]!r}: choose from {', '.join(CORPORA)}")
    os.makedirs(args.output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rustnce-corpora-") as scratch:
        for name in args.names or list(CORPORA):
            package, extract, fewest = CORPORA[name]
            root = unpacked(package, scratch)
            path = os.path.join(args.output_dir, f"{name}.txt")
            lines, tokens = write_corpus(extract(root), fewest, path)
            print(f"{path}: {tokens:,} tokens in {lines:,} lines, from Debian's {package}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
