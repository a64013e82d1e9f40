"""Pre-commit hook: every YAML file (multi-document allowed) parses."""

import sys

import yaml

bad = 0
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as handle:
            list(yaml.safe_load_all(handle))
    except yaml.YAMLError as error:
        print(f"{path}: {error}")
        bad = 1
sys.exit(bad)
