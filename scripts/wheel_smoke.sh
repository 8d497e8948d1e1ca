#!/usr/bin/env bash
# Builds the wheel with maturin, installs it into a fresh virtual environment and runs a smoke
# test from outside the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
python3 -m maturin build --release --out dist
smoke=$(mktemp -d)
python3 -m venv "$smoke/venv"
"$smoke/venv/bin/pip" install --quiet dist/rustnce-*.whl
cd "$smoke"
"$smoke/venv/bin/python" - <<'PY'
import numpy as np

import rustnce

assert "site-packages" in rustnce.__file__, rustnce.__file__
labels = np.array([[0, 3], [19, 7]])
ids, _, _ = rustnce.log_uniform_candidate_sampler(labels, 2, 6, False, 20, seed=3)
assert ids.tolist() == [0, 10, 0, 6, 2, 9], ids  # TensorFlow's ids for seed 3 (docs/semantics.md §13 item 2)
weights = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
loss = rustnce.nce_loss(weights, np.zeros(20, np.float32), labels, np.ones((2, 4), np.float32), 6, 20, num_true=2, seed=1)
assert loss.shape == (2,) and np.isfinite(loss).all()
print("wheel smoke test passed:", rustnce.__file__)
PY
"$smoke/venv/bin/rustnce" --help > /dev/null
echo "console script 'rustnce' runs"
