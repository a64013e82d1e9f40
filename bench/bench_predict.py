"""Time the CI gate end to end (process start to exit, model loaded) next to `python -c "import sklearn"`.

Both run in the same session, interleaved, several repetitions; the script prints medians and the ratio.
The model is trained on the real rails history when ../shared/data is present (the biggest project, so the
biggest history snapshot), otherwise on a synthetic history (said in the output).

    .venv/bin/python bench/bench_predict.py [--repetitions 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cipulse.predict.dataset import load_csv_projects
from cipulse.predict.synthetic import write_csv
from cipulse.predict.trainjob import train_artifact

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ci-build-history" / "rails.csv"


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "bench@example.com")
    git("config", "user.name", "Bench")
    for index in range(3):
        (root / f"module{index}.py").write_text(f"VALUE = {index}\n" * (index + 1))
        (root / "tests").mkdir(exist_ok=True)
        (root / "tests" / f"test_{index}.py").write_text("def test():\n    assert True\n")
        git("add", ".")
        git("commit", "-qm", f"change {index}")
    return root


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        source = REAL_DATA if REAL_DATA.exists() else write_csv(work / "synthetic.csv", builds=5000, seed=0)
        model = work / "model.json"
        train_artifact(load_csv_projects(source), model)
        repo = make_repo(work / "repo")
        cipulse = str(Path(sys.executable).with_name("cipulse"))
        commands = {
            "cipulse predict": [cipulse, "predict", "--model", str(model), "--repo", str(repo), "--advisory"],
            "python -m cipulse.predict": [
                sys.executable,
                "-m",
                "cipulse.predict",
                "--model",
                str(model),
                "--repo",
                str(repo),
                "--advisory",
            ],
            'python -c "import sklearn"': [sys.executable, "-c", "import sklearn"],
        }
        for command in commands.values():  # warm the file cache once; not timed
            timed(command)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repetitions):
            for name, command in commands.items():
                samples[name].append(timed(command))
        size = model.stat().st_size
    print(
        f"model trained on: {'real rails history' if source == REAL_DATA else 'SYNTHETIC history'}"
        f" ({size:,} bytes)"
    )
    print(f"repetitions: {args.repetitions} (interleaved)")
    print(f"{'command':32} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in samples.items():
        print(f"{name:32} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    sklearn = statistics.median(samples['python -c "import sklearn"'])
    for name in ("cipulse predict", "python -m cipulse.predict"):
        ratio = statistics.median(samples[name]) / sklearn
        print(f"ratio {name} / import sklearn: {ratio:.2f} ({'faster' if ratio < 1 else 'SLOWER'})")


if __name__ == "__main__":
    main()
