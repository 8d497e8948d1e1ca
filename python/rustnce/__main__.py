"""``python -m rustnce``: train skip-gram word vectors with rustnce's fused sampled losses (see
``python -m rustnce --help`` and :mod:`rustnce.word2vec`)."""

from __future__ import annotations

import sys

from .word2vec.cli import main

if __name__ == "__main__":
    sys.exit(main())
