#!/usr/bin/env bash
# Builds (incrementally) and runs the whole test suite: lit + GoogleTest via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure -j2
