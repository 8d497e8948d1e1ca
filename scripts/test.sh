#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: the Rust core's tests, then pytest
# against the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet ".[test]"
cargo test --quiet
python3 -m pytest -q
