"""Pre-commit hook: fail on trailing whitespace, naming file and line."""

import sys

bad = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if line.rstrip("\r\n") != line.rstrip("\r\n").rstrip(" \t"):
                print(f"{path}:{number}: trailing whitespace")
                bad = 1
sys.exit(bad)
