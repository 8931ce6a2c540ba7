#!/usr/bin/env bash
# Install everything (scripts/install.sh) and run the main job: the live app on the
# built-in simulated board. Extra arguments go to `emgfb live` (e.g. --source, --record).
#
# On a desktop the window opens as usual. On a machine without a display (a server, CI, a
# fresh container) the same real Qt window runs on a virtual screen (Xvfb) for
# EMGFB_HEADLESS_SECONDS (default 10) and a screenshot of it is saved to emgfb-live.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ -n "${QT_QPA_PLATFORM:-}" ]; then
  exec .venv/bin/emgfb live "$@"
fi
secs=${EMGFB_HEADLESS_SECONDS:-10}
echo "run.sh: no display found; running the live app on a virtual screen (Xvfb) for ${secs} s." >&2
echo "run.sh: on a desktop, run: .venv/bin/emgfb live" >&2
xvfb-run -a -s "-screen 0 1680x1000x24" \
  .venv/bin/emgfb live --screenshot emgfb-live.png --after "$secs" "$@"
echo "run.sh: screenshot of the live window saved to $(pwd)/emgfb-live.png" >&2
