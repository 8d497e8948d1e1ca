"""The package's version has one source, the crate's: the extension, the module and the
installed distribution's metadata all say the same."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import rustnce
from rustnce import _rustnce

ROOT = Path(__file__).resolve().parent.parent


def test_version_comes_from_the_crate():
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    crate_version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert rustnce.__version__ == _rustnce.__version__ == crate_version
    assert importlib.metadata.version("rustnce") == crate_version
