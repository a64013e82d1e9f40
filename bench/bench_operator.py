"""Operator footprint with many monitors: resident memory and CPU per poll, next to an idle baseline.

Runs the real `cipulse operator run` (kopf) as a subprocess against a real kube-apiserver
(tests.services.kube) with N CiCdMonitors pointing at the GitHub emulator, and `cipulse up` with the same
N monitors; both are compared with an idle Python process that imports the same modules. Memory is read
from /proc (VmRSS now, VmHWM peak), CPU from /proc/PID/stat (user + system).

    .venv/bin/python bench/bench_operator.py [--monitors 100] [--jobs 200] [--polls 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cipulse.emulator import Emulator  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
# The environment deploy/Dockerfile sets (fewer glibc malloc arenas: less fragmentation across threads).
DEPLOYED_ENV = {"MALLOC_ARENA_MAX": "2"}
IMPORTS = (
    "import kopf, kubernetes, httpx, prometheus_client, aiohttp, cipulse.operator.run, cipulse.store.sqlite"
)


@dataclass
class Sample:
    rss_mb: float
    peak_mb: float
    cpu_s: float


def sample(pid: int) -> Sample:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / TICKS
    return Sample(int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024, cpu)


def baseline() -> Sample:
    env = {**os.environ, **DEPLOYED_ENV}
    process = subprocess.Popen(
        [sys.executable, "-c", f"{IMPORTS}; import time; time.sleep(60)"], cwd=ROOT, env=env
    )
    try:
        time.sleep(6)
        return sample(process.pid)
    finally:
        process.kill()
        process.wait()


def manifests(emulator: Emulator, namespace: str | None) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for index, repository in enumerate(emulator.repositories):
        metadata: dict[str, object] = {"name": f"m{index:03d}"}
        if namespace:
            metadata["namespace"] = namespace
        spec = {
            "repository": repository,
            "apiUrl": emulator.api_url,
            "tokenSecretRef": {"name": "emulator-token", "key": "token"},
            "pollInterval": "30s",
        }
        docs.append(
            {"apiVersion": "cipulse.io/v1alpha1", "kind": "CiCdMonitor", "metadata": metadata, "spec": spec}
        )
    return docs


def watch(pid: int, seconds: float, done: object = None) -> tuple[Sample, Sample]:
    """Samples at the start and after `seconds` (or when `done()` turns true, whichever first)."""
    first = sample(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (callable(done) and done()):
        time.sleep(1)
    return first, sample(pid)


def run_operator(emulator: Emulator, polls: int, console: Console) -> tuple[Sample, float, float]:
    from tests.services.kube import running_control_plane

    with running_control_plane() as kube, tempfile.TemporaryDirectory() as tmp:
        kube.kubectl("apply", "-f", str(ROOT / "deploy/crd/cicdmonitors.yaml"))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/cicdmonitors.cipulse.io")
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "emulator-token",
                "namespace": "default",
                "labels": {"cipulse.io/github-token": "true"},
            },
            "stringData": {"token": emulator.token},
        }
        kube.kubectl("apply", "-f", "-", input=json.dumps(secret))
        items = {"apiVersion": "v1", "kind": "List", "items": manifests(emulator, "default")}
        kube.kubectl("apply", "-f", "-", input=json.dumps(items))
        log = Path(tmp) / "operator.log"
        env = {**os.environ, **DEPLOYED_ENV, "KUBECONFIG": str(kube.kubeconfig)}
        argv = [
            sys.executable,
            "-m",
            "cipulse",
            "operator",
            "run",
            "--store",
            f"sqlite:///{tmp}/op.db",
            "--metrics-port",
            "0",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:

            def all_ready() -> bool:
                listing = json.loads(kube.kubectl("get", "cicdmonitors", "-o", "json").stdout)["items"]
                return all(
                    any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in i.get("status", {}).get("conditions", [])
                    )
                    for i in listing
                )

            start = time.monotonic()
            _, after_backfill = watch(process.pid, 600, all_ready)
            backfill_s = time.monotonic() - start
            if not all_ready():
                tail = log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"operator: monitors not Ready after {backfill_s:.0f}s; log tail:\n{tail}")
            console.print(f"operator: {len(emulator.repositories)} monitors Ready after {backfill_s:.0f}s")
            steady_start, steady_end = watch(process.pid, 30 * polls + 5)
            per_poll = (steady_end.cpu_s - steady_start.cpu_s) / (polls * len(emulator.repositories))
            return steady_end, after_backfill.cpu_s, per_poll
        finally:
            process.terminate()
            process.wait(timeout=60)


def run_standalone(emulator: Emulator, polls: int, console: Console) -> tuple[Sample, float, float]:
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "monitors.yaml"
        path.write_text(yaml.safe_dump_all(manifests(emulator, None)))
        env = {**os.environ, **DEPLOYED_ENV, "EMULATOR_TOKEN_TOKEN": emulator.token}
        argv = [
            sys.executable,
            "-m",
            "cipulse",
            "up",
            "-f",
            str(path),
            "--store",
            f"sqlite:///{tmp}/up.db",
            "--rounds",
            str(polls + 1),
        ]
        log = Path(tmp) / "up.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        time.sleep(0.5)
        last = sample(process.pid)
        first_round_cpu: float | None = None
        while process.poll() is None:
            try:
                last = sample(process.pid)
            except (FileNotFoundError, KeyError):  # exited between poll() and the read
                break
            rounds = log.read_text(errors="replace").count("cipulse - ")
            if rounds >= 1 and first_round_cpu is None:
                first_round_cpu = last.cpu_s
            time.sleep(0.5)
        process.wait()
        if process.returncode != 0:
            console.print(log.read_text(errors="replace")[-3000:])
        console.print(f"cipulse up: exit code {process.returncode}")
        backfill_cpu = first_round_cpu or last.cpu_s
        per_poll = (last.cpu_s - backfill_cpu) / max(1, polls * len(emulator.repositories))
        return last, backfill_cpu, per_poll


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per emulated repository")
    parser.add_argument("--polls", type=int, default=2, help="steady-state polls measured per monitor")
    parser.add_argument("--skip-operator", action="store_true", help="no kube-apiserver available")
    args = parser.parse_args()
    console = Console()
    repos = {f"bench-org/repo-{i:03d}": args.jobs for i in range(args.monitors)}
    base = baseline()
    results: dict[str, tuple[Sample, float, float]] = {}
    with Emulator(seed=3, repos=repos, rate_limit=10**9, graphql_rate_limit=10**9) as emulator:
        if not args.skip_operator:
            results["operator (kopf)"] = run_operator(emulator, args.polls, console)
        results["cipulse up"] = run_standalone(emulator, args.polls, console)
    table = Table(title=f"{args.monitors} monitors x {args.jobs} jobs, {args.polls} steady polls each")
    for column in (
        "process",
        "RSS MB",
        "peak RSS MB",
        "vs idle",
        "backfill CPU s",
        "CPU ms / poll / monitor",
    ):
        table.add_column(column, justify="right")
    table.add_row("idle python, same imports", f"{base.rss_mb:.0f}", f"{base.peak_mb:.0f}", "1.00x", "-", "-")
    for name, (end, backfill_cpu, per_poll) in results.items():
        table.add_row(
            name,
            f"{end.rss_mb:.0f}",
            f"{end.peak_mb:.0f}",
            f"{end.peak_mb / base.peak_mb:.2f}x",
            f"{backfill_cpu:.1f}",
            f"{per_poll * 1000:.1f}",
        )
    console.print(table)
    console.print("goal: operator peak RSS < 200 MB")


if __name__ == "__main__":
    main()
