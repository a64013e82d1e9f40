"""Proof that the Elasticsearch and OpenSearch test services are real engines computing real aggregations.

1,000 generated job-like documents are bulk-indexed over plain HTTP; the terms, date_histogram and
percentiles answers must equal what this test computes from the same documents in Python.
Durations come from a few plateaus so every asked percentile sits deep inside a run of equal values:
there the exact answer is unambiguous, whatever interpolation each engine's t-digest uses.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration

DOCUMENTS = 1000
PERCENTS = (50.0, 90.0, 99.0)
DURATION_PLATEAUS = {30: 0.2, 60: 0.2, 120: 0.3, 300: 0.1, 600: 0.15, 1200: 0.05}
REPOSITORIES = ("octo/api", "octo/web", "octo/cli", "acme/infra", "acme/docs")
START = datetime(2026, 3, 1, tzinfo=UTC)


def generate_documents(seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    durations = list(DURATION_PLATEAUS)
    weights = list(DURATION_PLATEAUS.values())
    return [
        {
            "job_id": index,
            "repository": rng.choices(REPOSITORIES, weights=(5, 4, 3, 2, 1))[0],
            "created_at": (START + timedelta(seconds=rng.randrange(14 * 86400))).isoformat(),
            "duration_s": float(rng.choices(durations, weights=weights)[0]),
        }
        for index in range(DOCUMENTS)
    ]


def bulk_body(index: str, documents: list[dict[str, object]]) -> str:
    lines: list[str] = []
    for document in documents:
        lines.append(json.dumps({"index": {"_index": index, "_id": str(document["job_id"])}}))
        lines.append(json.dumps(document))
    return "\n".join(lines) + "\n"


@pytest.fixture(params=["elasticsearch", "opensearch", "opensearch3"])
def engine_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_bulk_index_and_exact_aggregations(engine_url: str) -> None:
    documents = generate_documents()
    index = "smoke-jobs"
    with httpx.Client(base_url=engine_url, timeout=60.0) as client:
        client.delete(f"/{index}", params={"ignore_unavailable": "true"})
        created = client.put(
            f"/{index}",
            json={
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": {
                    "dynamic": "strict",
                    "properties": {
                        "job_id": {"type": "long"},
                        "repository": {"type": "keyword"},
                        "created_at": {"type": "date"},
                        "duration_s": {"type": "double"},
                    },
                },
            },
        )
        assert created.status_code == 200, created.text

        bulk = client.post(
            "/_bulk",
            content=bulk_body(index, documents),
            headers={"Content-Type": "application/x-ndjson"},
            params={"refresh": "wait_for"},
        )
        assert bulk.status_code == 200, bulk.text
        bulk_result = bulk.json()
        assert bulk_result["errors"] is False
        assert len(bulk_result["items"]) == DOCUMENTS

        count = client.get(f"/{index}/_count").json()["count"]
        assert count == DOCUMENTS

        response = client.post(
            f"/{index}/_search",
            json={
                "size": 0,
                "track_total_hits": True,
                "aggs": {
                    "by_repository": {
                        "terms": {"field": "repository", "size": 10},
                        "aggs": {"total_duration": {"sum": {"field": "duration_s"}}},
                    },
                    "per_day": {
                        "date_histogram": {
                            "field": "created_at",
                            "calendar_interval": "day",
                            "time_zone": "UTC",
                            "min_doc_count": 1,
                        }
                    },
                    "duration_percentiles": {
                        "percentiles": {"field": "duration_s", "percents": list(PERCENTS)}
                    },
                },
            },
        )
        assert response.status_code == 200, response.text
        aggregations = response.json()["aggregations"]

    expected_terms = Counter(str(document["repository"]) for document in documents)
    assert {
        bucket["key"]: bucket["doc_count"] for bucket in aggregations["by_repository"]["buckets"]
    } == dict(expected_terms)
    expected_sums: dict[str, float] = {}
    for document in documents:
        repository = str(document["repository"])
        expected_sums[repository] = expected_sums.get(repository, 0.0) + float(document["duration_s"])  # type: ignore[arg-type]
    assert {
        bucket["key"]: bucket["total_duration"]["value"]
        for bucket in aggregations["by_repository"]["buckets"]
    } == dict(expected_sums)

    expected_days = Counter(str(document["created_at"])[:10] for document in documents)
    assert {
        bucket["key_as_string"][:10]: bucket["doc_count"] for bucket in aggregations["per_day"]["buckets"]
    } == dict(sorted(expected_days.items()))

    durations = np.sort(np.array([float(document["duration_s"]) for document in documents]))  # type: ignore[arg-type]
    returned = aggregations["duration_percentiles"]["values"]
    for percent in PERCENTS:
        position = int(percent / 100 * DOCUMENTS)
        window = durations[max(0, position - 20) : position + 20]
        assert window.min() == window.max(), f"generated data puts p{percent} near a plateau edge"
        expected = float(np.percentile(durations, percent))
        assert returned[_percent_key(returned, percent)] == pytest.approx(expected, rel=1e-9)


def _percent_key(values: dict[str, float], percent: float) -> str:
    """Engines spell the key "50.0"; look it up by value so a "50" spelling would also be found."""
    return next(key for key in values if float(key) == percent)
