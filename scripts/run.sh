#!/usr/bin/env bash
# Install everything (scripts/install.sh) and run the main job on the built-in simulated
# board. Extra arguments go to the emgfb command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/emgfb live "$@"
