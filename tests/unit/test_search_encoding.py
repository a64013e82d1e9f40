"""The search store's write encoding: documents as bytes, _bulk bodies, index routing (no engine)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

from cipulse.records import Job, WorkflowRun, to_document
from cipulse.store.search_client import BulkAction, SearchClient, bulk_body
from cipulse.store.search_documents import job_from_source, job_source, run_from_source, run_source
from cipulse.store.search_ingest import SearchWriter
from cipulse.store.search_mappings import IndexLayout
from cipulse.store.synthetic import generate

START = datetime(2026, 1, 28, tzinfo=UTC)


def sample() -> tuple[list[Job], list[WorkflowRun]]:
    batches = list(generate(seed=5, jobs=600, start=START, days=10, batch_jobs=600))
    return [j for b in batches for j in b.jobs], [r for b in batches for r in b.runs]


def test_documents_round_trip_and_spell_times_like_to_document() -> None:
    jobs, runs = sample()
    for job in jobs:
        source = json.loads(job_source(job))
        generic = to_document(job)
        assert {k: v for k, v in source.items() if k in generic and k != "steps"} == {
            k: v for k, v in generic.items() if k != "steps"
        }
        assert job_from_source(source) == job
    for run in runs:
        source = json.loads(run_source(run))
        assert {k: v for k, v in source.items() if k in to_document(run)} == to_document(run)
        assert run_from_source(source) == run


def test_other_offsets_and_microseconds_are_stored_as_utc_z() -> None:
    job = sample()[0][0]
    plus_two = timezone(timedelta(hours=2))
    moved = dataclasses.replace(
        job, created_at=datetime(2026, 2, 1, 1, 0, 0, 250, tzinfo=plus_two), started_at=None
    )
    source = json.loads(job_source(moved))
    assert source["created_at"] == "2026-01-31T23:00:00.000250Z"
    assert source["window_at"] == "2026-01-31T23:00:00.000250Z"
    assert job_from_source(source).created_at == moved.created_at


def test_an_id_beyond_64_bits_is_still_encoded_for_the_engine_to_refuse() -> None:
    job = dataclasses.replace(sample()[0][0], job_id=2**64)
    assert json.loads(job_source(job))["job_id"] == 2**64


def test_bulk_body_is_ndjson_with_escaped_ids() -> None:
    body = bulk_body(
        [
            BulkAction("delete", "p-jobs-2026.01", 'odd "id"'),
            BulkAction("index", "p-jobs-2026.02", "k:1", b'{"a":1}'),
            BulkAction("index", "p-jobs-2026.02", "k:2", {"b": [1, 2]}),
        ]
    )
    assert body.endswith(b"\n")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines == [
        {"delete": {"_index": "p-jobs-2026.01", "_id": 'odd "id"'}},
        {"index": {"_index": "p-jobs-2026.02", "_id": "k:1"}},
        {"a": 1},
        {"index": {"_index": "p-jobs-2026.02", "_id": "k:2"}},
        {"b": [1, 2]},
    ]


def test_cached_routing_equals_the_layout() -> None:
    layout = IndexLayout("p")
    client = SearchClient("http://127.0.0.1:9")  # never contacted
    writer = SearchWriter(client, layout, {})
    try:
        jobs, runs = sample()
        plus_two = timezone(timedelta(hours=2))
        jobs += [
            dataclasses.replace(jobs[0], created_at=None, started_at=None, completed_at=None),
            dataclasses.replace(jobs[0], created_at=datetime(2026, 3, 1, 0, 30, tzinfo=plus_two)),
            dataclasses.replace(jobs[0], created_at=datetime(2026, 1, 31, 23, 59, 59)),  # naive: UTC
        ]
        expected = {"p-jobs-undated", "p-jobs-2026.01", "p-jobs-2026.02"}
        assert {layout.job_index(job) for job in jobs} >= expected
        for job in jobs:
            assert writer._job_index(job) == layout.job_index(job)
        for run in runs:
            assert writer._run_index(run) == layout.run_index(run)
    finally:
        writer.close()
        client.close()
