"""`python -m cipulse.predict`: the gate with only the standard library (no typer needed).

Same options and exit codes as `cipulse predict`; this entry point lets CI install cipulse with
`pip install --no-deps` (see action.yml) and still run the gate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cipulse.predict.gate import GateOptions, run


def parse(argv: list[str]) -> GateOptions:
    parser = argparse.ArgumentParser(prog="python -m cipulse.predict", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("cipulse-model.json"))
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--revision", default="HEAD")
    parser.add_argument("--base")
    parser.add_argument("--project")
    parser.add_argument("--branch")
    parser.add_argument("--author")
    parser.add_argument("--event")
    parser.add_argument("--store")
    parser.add_argument("--no-git", action="store_true")
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--model-sha256")
    parser.add_argument("--advisory", action="store_true")
    parser.add_argument("--fail-closed", action="store_true")
    parser.add_argument("--json", action="store_true", dest="as_json")
    args = parser.parse_args(argv)
    return GateOptions(
        model=args.model,
        repo=args.repo,
        revision=args.revision,
        base=args.base,
        project=args.project,
        branch=args.branch,
        author=args.author,
        event=args.event,
        store=args.store,
        use_git=not args.no_git,
        threshold=args.threshold,
        model_sha256=args.model_sha256,
        advisory=args.advisory,
        fail_closed=args.fail_closed,
        as_json=args.as_json,
    )


if __name__ == "__main__":
    sys.exit(run(parse(sys.argv[1:])))
