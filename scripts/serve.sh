#!/usr/bin/env bash
# Set up, then serve the web UI on the bundled seeds/ corpus at http://127.0.0.1:7860
# (the first run builds the model, ~20 s, and the seeds index, a few minutes; later runs reuse both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/isnad serve "$@"
