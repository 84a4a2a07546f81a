#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build, and
# run the main job: compile the bundled tiny Falcon checkpoint to native code
# and generate tokens with it; then show what the compiler makes of
# falcon-180B's config.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo
echo "== falcon-compile examples/tiny-falcon-7b -o build/artifacts/tiny-falcon-7b"
build/bin/falcon-compile examples/tiny-falcon-7b -o build/artifacts/tiny-falcon-7b
echo
echo "== falcon-run build/artifacts/tiny-falcon-7b --prompt-ids 1,17,42,99,3,250,7 --max-new-tokens 20"
build/bin/falcon-run build/artifacts/tiny-falcon-7b --prompt-ids 1,17,42,99,3,250,7 --max-new-tokens 20
echo
echo "== falcon-compile examples/configs/falcon-180B --print-stats"
build/bin/falcon-compile examples/configs/falcon-180B --print-stats
