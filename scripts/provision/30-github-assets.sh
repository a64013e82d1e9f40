#!/usr/bin/env bash
# GitHub's published GraphQL schema, OpenAPI description and webhook examples (npm), pinned in versions.env.
# The emulator and the contract tests load them from ~/.cache/cipulse/github-assets; a no-op when cached.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "${CIPULSE_CACHE_DIR:-$HOME/.cache/cipulse}"
exec "$root/.venv/bin/python" -m cipulse.emulator.assets
