#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build, and
# run the main job on the bundled example model: compile examples/falcon-mini
# (a small trained Falcon with its tokenizer) to native code, generate text
# from a text prompt, score its held-out text; then show what the compiler
# makes of falcon-180B's config.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
run() {
  echo
  echo "== $*"
  "$@"
}
run build/bin/falcon-compile examples/falcon-mini -o build/artifacts/falcon-mini
run build/bin/falcon-run build/artifacts/falcon-mini --prompt "A class definition defines" \
  --max-new-tokens 48
run build/bin/falcon-run build/artifacts/falcon-mini --prompt "The for statement" \
  --max-new-tokens 48 --temperature 0.8 --top-p 0.95 --seed 1
run build/bin/falcon-run build/artifacts/falcon-mini --perplexity examples/falcon-mini/heldout.txt
run build/bin/falcon-compile examples/configs/falcon-180B --print-stats
