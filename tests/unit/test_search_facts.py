"""The two-request percentile scheme of the search store gives exact nearest-rank percentiles.

The engine's part (bucket counts, then exact counts inside the needed buckets) is simulated here from
raw values; the integration tests check the same against real engines and SQLite.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from cipulse.metrics.percentiles import PERCENTILES, nearest_rank_from_counts, percentiles_of
from cipulse.store.search_facts import BUCKET_SECONDS, mix_counts, needed_buckets
from cipulse.store.search_mappings import IndexLayout, month_start, month_suffix, next_month


def bucket_counts(values: list[int]) -> Counter[int]:
    return Counter((value // BUCKET_SECONDS) * BUCKET_SECONDS for value in values)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=20_000), max_size=400),
    st.lists(st.integers(min_value=0, max_value=20_000), max_size=50),
)
def test_mixed_counts_give_exact_percentiles(values: list[int], other_groups: list[int]) -> None:
    """The engine returns exact values in the union of a level's needed buckets (other groups' values
    there too); a group must use only its own, in its own needed buckets."""
    buckets = bucket_counts(values)
    needed = needed_buckets(buckets)
    assert len(needed) <= len(PERCENTILES)
    union = needed | needed_buckets(bucket_counts(other_groups))
    exact = Counter(value for value in values if (value // BUCKET_SECONDS) * BUCKET_SECONDS in union)
    mixed = mix_counts(buckets, exact, needed)
    assert nearest_rank_from_counts(mixed.items()) == percentiles_of(values)
    assert sum(mixed.values()) == len(values)


def test_a_bucket_left_out_would_be_noticed() -> None:
    values = [5, 40, 41, 47, 100, 130, 131, 900]
    buckets = bucket_counts(values)
    needed = needed_buckets(buckets)
    exact = Counter(values)
    wrong = mix_counts(buckets, exact, set(sorted(needed)[1:]))
    assert nearest_rank_from_counts(wrong.items()) != percentiles_of(values)


def test_monthly_index_names() -> None:
    layout = IndexLayout("cipulse")
    assert month_suffix(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026.12"
    assert month_suffix(None) == "undated"
    assert month_start("2026.03") == datetime(2026, 3, 1, tzinfo=UTC)
    assert month_start("undated") is None
    assert next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert layout.suffix("cipulse-jobs-2026.03") == "2026.03"
    templates = layout.templates()
    assert set(templates) == {"cipulse-runs", "cipulse-jobs", "cipulse-watermarks"}
    for template in templates.values():
        assert template["template"]["mappings"]["dynamic"] == "strict"


def test_index_prefix_is_validated() -> None:
    for bad in ("", "Cipulse", "a b", "a*b", "a/b"):
        try:
            IndexLayout(bad)
        except ValueError as error:
            assert "prefix" in str(error)
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_every_record_field_is_mapped() -> None:
    """Mappings are strict: a field added to a record without a mapping would make every write fail."""
    from cipulse.records import Job, Step, WorkflowRun, to_document
    from cipulse.store.search_documents import job_document, job_from_source, run_document, run_from_source
    from cipulse.store.search_mappings import JOB_PROPERTIES, RUN_PROPERTIES

    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    job = Job(
        repository="o/r",
        run_id=1,
        run_attempt=1,
        job_id=2,
        name="build",
        workflow_name="CI",
        head_sha="0" * 40,
        head_branch="main",
        status="completed",
        conclusion="success",
        created_at=created,
        started_at=created,
        completed_at=created,
        queue_estimated=True,
        runner_name="runner-1",
        runner_labels=("ubuntu-latest", "x64"),
        steps=(Step(2, 1, "Set up job", "completed", "success", created, created),),
    )
    run = WorkflowRun(
        repository="o/r",
        run_id=1,
        run_attempt=1,
        run_number=1,
        workflow_id=3,
        workflow_name="CI",
        event="push",
        head_sha="0" * 40,
        head_branch="main",
        status="completed",
        conclusion="success",
        created_at=created,
        run_started_at=created,
        updated_at=created,
        actor="octocat",
        html_url="https://github.com/o/r/actions/runs/1",
        pull_request_numbers=(7,),
    )
    assert set(job_document(job)) == set(JOB_PROPERTIES)
    assert set(run_document(run)) == set(RUN_PROPERTIES)

    # the search documents spell every record field exactly as the generic converter does
    generic_job = to_document(job)
    for step in generic_job["steps"]:
        del step["job_id"]
    assert {k: v for k, v in job_document(job).items() if k in generic_job} == generic_job
    assert {k: v for k, v in run_document(run).items() if k in to_document(run)} == to_document(run)
    assert job_from_source(job_document(job)) == job
    assert run_from_source(run_document(run)) == run


def test_job_neighbours_cover_adjacent_months_and_undated() -> None:
    layout = IndexLayout("c")
    assert layout.job_neighbours("c-jobs-2026.01") == {
        "c-jobs-2025.12",
        "c-jobs-2026.01",
        "c-jobs-2026.02",
        "c-jobs-undated",
    }
    assert layout.job_neighbours("c-jobs-undated") == {"c-jobs-*"}
    assert layout.is_job_index("c-jobs-2026.01") and not layout.is_job_index("c-runs-2026.01")
