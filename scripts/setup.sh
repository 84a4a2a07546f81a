#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build, and
# run the main job on a bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo
echo "== falcon-compile examples/configs/falcon-180B --print-stats"
build/bin/falcon-compile examples/configs/falcon-180B --print-stats
echo
echo "== the decoder layer all 80 layers share (falcon-compile --emit=falcon)"
build/bin/falcon-compile examples/configs/falcon-180B --emit=falcon |
  sed -n '/func.func private @decoder_layer/,/^  }/p'
