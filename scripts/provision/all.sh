#!/usr/bin/env bash
# Fetch or build every real service the integration tests use; each script is a no-op when its cache is present.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for script in "$here"/[0-9]*.sh; do
  [ -e "$script" ] || continue
  echo "== $(basename "$script")"
  bash "$script"
done
