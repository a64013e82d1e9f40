"""Pre-commit hook: non-empty text files end with exactly one newline."""

import sys

bad = 0
for path in sys.argv[1:]:
    with open(path, "rb") as handle:
        data = handle.read()
    if data and (not data.endswith(b"\n") or data.endswith(b"\n\n")):
        print(f"{path}: must end with exactly one newline")
        bad = 1
sys.exit(bad)
