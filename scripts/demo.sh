#!/usr/bin/env bash
# Set up (idempotent) and run the Livebase demo on the embedded defaults: SQLite under
# ./data, the in-process event bus and the ffmpeg bundled with the imageio-ffmpeg wheel.
# Extra arguments are passed on: scripts/demo.sh --help
set -euo pipefail

ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
printf '==> livebase demo %s\n' "$*"
exec .venv/bin/livebase demo "$@"
