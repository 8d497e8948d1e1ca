#!/usr/bin/env bash
# Builds the official fastText command-line binary at a pinned commit, for
# benches/word2vec_vs_gensim.py; prints the binary's path. Not part of CI.
#
#   benches/build_fasttext.sh                      # clones from GitHub
#   FASTTEXT_REPOSITORY=/path/to/fastText.git benches/build_fasttext.sh   # a local clone or mirror
#
# The binary goes to target/fasttext/<commit>/fasttext (ignored by git, like cargo's output).
# Needs git, make and a C++17 compiler (Debian: apt-get install build-essential git).
set -euo pipefail

# facebookresearch/fastText main, 2024-03-13: the C++ sources of `fasttext` 0.9.3 on PyPI
# and of `fasttext-numpy2` 0.10.4.
COMMIT=1142dc4c4ecbc19cc16eee5cdd28472e689267e6
REPOSITORY=${FASTTEXT_REPOSITORY:-https://github.com/facebookresearch/fastText.git}

cd "$(dirname "$0")/.."
destination=target/fasttext/$COMMIT
if [[ -x $destination/fasttext ]]; then
    echo "$destination/fasttext"
    exit 0
fi
mkdir -p target/fasttext
work=$(mktemp -d target/fasttext/build.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "cloning $REPOSITORY at $COMMIT" >&2
git clone --quiet "$REPOSITORY" "$work/src"
git -C "$work/src" -c advice.detachedHead=false checkout --quiet "$COMMIT"
echo "building fastText (make opt: -O3 -funroll-loops -march=native)" >&2
make --silent -C "$work/src" -j"$(nproc)" opt >&2
# Into place only when complete, so an interrupted build is never taken for a finished one.
mkdir -p "$work/out"
cp "$work/src/fasttext" "$work/out/fasttext"
mv "$work/out" "$destination"
echo "$destination/fasttext"
