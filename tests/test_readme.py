"""The README's Python examples run as written (in order, sharing one namespace) and compute
what they say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # The skip-gram step moved the rows it touched and returned a finite summed loss.
    assert np.isfinite(namespace["loss"]).all()
    assert np.any(namespace["output_vectors"] != 0)
    # The gradient example accumulated something.
    assert np.any(namespace["weights_grad"] != 0)
