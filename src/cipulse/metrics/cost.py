"""Cost estimate: billable job minutes x a per-minute rate chosen by the job's runner labels.

Default rates are GitHub's published standard hosted-runner prices (USD per minute, effective 2026-01-01,
docs.github.com "Actions runner pricing"): Linux 2-core 0.006, Linux 2-core arm64 0.005, Linux 1-core
(``ubuntu-slim``) 0.002, Windows 2-core 0.010 (arm64 0.010), macOS 0.062; self-hosted runners cost nothing
per minute here. Larger runners use organisation-chosen labels that cannot be recognised reliably: map them
with ``RunnerRates.label_classes`` or they are priced as standard Linux. Before 2026 the rates were 0.008 /
0.016 / 0.08; pass those to `RunnerRates` to price older history at the old list price.

Stores keep billable minutes per runner label set (`labels_key`, integers) and classify and price them at
query time, so changing the table or the label mapping never requires re-indexing and every store produces
identical costs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

RUNNER_CLASSES: Final[tuple[str, ...]] = (
    "linux",
    "linux_arm",
    "linux_slim",
    "windows",
    "windows_arm",
    "macos",
    "self_hosted",
)

DEFAULT_RATES_USD: Final[Mapping[str, float]] = MappingProxyType(
    {
        "linux": 0.006,
        "linux_arm": 0.005,
        "linux_slim": 0.002,
        "windows": 0.010,
        "windows_arm": 0.010,
        "macos": 0.062,
        "self_hosted": 0.0,
    }
)


def labels_key(labels: Iterable[str]) -> str:
    """Canonical text for a job's runner label set: lower-cased, sorted, comma-joined ("" when unknown)."""
    return _labels_key(labels if isinstance(labels, tuple) else tuple(labels))


@functools.lru_cache(maxsize=4096)
def _labels_key(labels: tuple[str, ...]) -> str:
    """Cached: every job of a repository carries one of a few label sets, and ingest asks for each job."""
    return ",".join(sorted({label.strip().lower() for label in labels if label.strip()}))


def runner_class(labels: Iterable[str], label_classes: Mapping[str, str] | None = None) -> str:
    """The pricing class of a job from its ``runs-on`` labels (first explicit mapping wins)."""
    lowered = [label.lower() for label in labels]
    if label_classes:
        for label in lowered:
            if label in label_classes:
                return label_classes[label]
    if "self-hosted" in lowered:
        return "self_hosted"
    joined = " ".join(lowered)
    arm = "arm" in joined
    if "windows" in joined:
        return "windows_arm" if arm else "windows"
    if "macos" in joined:
        return "macos"
    if "ubuntu-slim" in joined:
        return "linux_slim"
    return "linux_arm" if arm else "linux"


@dataclass(frozen=True, slots=True)
class RunnerRates:
    """Per-minute USD rate per runner class, plus optional label -> class overrides for larger runners."""

    per_minute_usd: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES_USD))
    label_classes: Mapping[str, str] = field(default_factory=dict)

    def rate(self, klass: str) -> float:
        """Unknown classes fall back to the Linux rate: an estimate should not silently read as free."""
        if klass in self.per_minute_usd:
            return self.per_minute_usd[klass]
        return self.per_minute_usd.get("linux", DEFAULT_RATES_USD["linux"])

    def classify(self, labels: Iterable[str]) -> str:
        return runner_class(labels, self.label_classes)


def minutes_by_class(
    minutes_by_labels: Mapping[str, int], rates: RunnerRates | None = None
) -> dict[str, int]:
    """Fold billable minutes per label set (`labels_key`) into minutes per runner class."""
    table = rates or RunnerRates()
    result: dict[str, int] = {}
    for key, minutes in minutes_by_labels.items():
        klass = table.classify(key.split(",") if key else ())
        result[klass] = result.get(klass, 0) + minutes
    return result


def cost_usd(minutes_per_class: Mapping[str, int], rates: RunnerRates | None = None) -> float:
    """Cost of billable minutes per runner class, rounded to micro-dollars (so stores agree exactly)."""
    table = rates or RunnerRates()
    return round(sum(minutes * table.rate(klass) for klass, minutes in sorted(minutes_per_class.items())), 6)
