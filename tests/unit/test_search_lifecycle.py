"""Retention decisions of the search store, without services: policy bodies, the mode decision from the
engines' probe answers, which indices a cutoff drops or trims, and the engine-policy safety margin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cipulse.store.search_lifecycle import (
    ENGINE_MARGIN_DAYS,
    RetentionSupport,
    describe,
    engine_min_age_days,
    ilm_policy,
    index_fate,
    ism_policy,
    managed_patterns,
    policy_name,
    support_from_probe,
    template_settings,
)
from cipulse.store.search_mappings import IndexLayout, month_start, month_suffix, next_month

LAYOUT = IndexLayout("cipulse")

# answers our integ-test engines gave (Elasticsearch 8.19.21, OpenSearch 2.19.6), and documented shapes
ES_WITHOUT_ILM = {
    "error": "Incorrect HTTP method for uri [/_ilm/status] and method [GET], allowed: [POST]",
    "status": 405,
}
OS_WITHOUT_ISM = {"error": "no handler found for uri [/_plugins/_ism/policies] and method [GET]"}
NO_PRIVILEGE = {
    "error": {
        "type": "security_exception",
        "reason": "action [cluster:admin/ilm/operation_mode/get] is unauthorized",
    },
    "status": 403,
}


def test_ilm_policy_is_one_delete_phase_a_month_after_retention() -> None:
    body = ilm_policy(90)
    phases = body["policy"]["phases"]
    assert set(phases) == {"delete"}
    assert phases["delete"] == {"min_age": f"{90 + ENGINE_MARGIN_DAYS}d", "actions": {"delete": {}}}
    assert body["policy"]["_meta"] == {"managed_by": "cipulse", "keep_days": 90}


def test_ism_policy_goes_hot_then_delete_and_matches_only_dated_indices() -> None:
    body = ism_policy(30, managed_patterns(LAYOUT))["policy"]
    states = {state["name"]: state for state in body["states"]}
    assert body["default_state"] == "hot" and set(states) == {"hot", "delete"}
    (transition,) = states["hot"]["transitions"]
    assert transition == {
        "state_name": "delete",
        "conditions": {"min_index_age": f"{30 + ENGINE_MARGIN_DAYS}d"},
    }
    assert states["hot"]["actions"] == []
    assert states["delete"] == {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
    (template,) = body["ism_template"]
    assert template["index_patterns"] == ["cipulse-runs-2*", "cipulse-jobs-2*"]
    assert isinstance(template["priority"], int)


def test_policy_ages_reject_nonsense() -> None:
    for bad in (0, -5):
        with pytest.raises(ValueError, match="at least 1"):
            engine_min_age_days(bad)
        with pytest.raises(ValueError):
            ilm_policy(bad)


def test_managed_patterns_cover_monthly_indices_only() -> None:
    layout = IndexLayout("ci-a")
    patterns = managed_patterns(layout)
    managed = ["ci-a-runs-2019.04", "ci-a-jobs-2026.12", "ci-a-jobs-2999.01"]
    never = [
        "ci-a-jobs-undated",
        "ci-a-watermarks",
        "ci-a-runs-x",
        "ci-b-runs-2026.01",
        "cipulse-jobs-2026.01",
    ]
    assert all(any(fnmatchcase(name, p) for p in patterns) for name in managed)
    assert not any(fnmatchcase(name, p) for p in patterns for name in never)
    assert policy_name(layout) == "ci-a-retention"


def _winning_template(templates: dict[str, dict[str, Any]], index: str) -> dict[str, Any]:
    """The template Elasticsearch/OpenSearch apply to a new index: the highest-priority match."""
    matches = [t for t in templates.values() if any(fnmatchcase(index, p) for p in t["index_patterns"])]
    return max(matches, key=lambda t: t["priority"])


def test_ilm_setting_reaches_dated_indices_but_never_the_undated_one() -> None:
    templates = LAYOUT.templates(template_settings("ilm", LAYOUT))
    dated = _winning_template(templates, "cipulse-jobs-2026.03")["template"]
    assert dated["settings"]["index.lifecycle.name"] == "cipulse-retention"
    assert dated["mappings"] == LAYOUT.templates()["cipulse-jobs"]["template"]["mappings"]
    assert (
        "index.lifecycle.name" in _winning_template(templates, "cipulse-runs-2026.03")["template"]["settings"]
    )
    for never in ("cipulse-jobs-undated", "cipulse-watermarks"):
        assert "index.lifecycle.name" not in _winning_template(templates, never)["template"]["settings"]
    priorities = [t["priority"] for t in templates.values()]
    # both engines refuse two overlapping templates of equal priority
    assert sorted(priorities) == [200, 200, 200, 201, 201]


@pytest.mark.parametrize("mode", ["ism", "deletion-job"])
def test_without_ilm_no_index_setting_is_added(mode: Any) -> None:
    assert template_settings(mode, LAYOUT) == {}
    templates = LAYOUT.templates(template_settings(mode, LAYOUT))
    for template in templates.values():
        assert not any(key.startswith("index.lifecycle") for key in template["template"]["settings"])


@pytest.mark.parametrize(
    ("engine", "answer", "mode", "capable", "says"),
    [
        ("elasticsearch", {"operation_mode": "RUNNING"}, "ilm", True, "ILM is running"),
        ("elasticsearch", {"operation_mode": "STOPPED"}, "deletion-job", False, "ILM is STOPPED"),
        ("elasticsearch", {"operation_mode": "STOPPING"}, "deletion-job", False, "ILM is STOPPING"),
        ("elasticsearch", ES_WITHOUT_ILM, "deletion-job", False, "no ILM"),
        ("elasticsearch", NO_PRIVILEGE, "deletion-job", False, "security_exception"),
        ("elasticsearch", None, "deletion-job", False, "no ILM"),
        ("opensearch", {"policies": [], "total_policies": 0}, "ism", True, "ISM is installed"),
        (
            "opensearch",
            {
                "error": {
                    "type": "index_not_found_exception",
                    "reason": "no such index [.opendistro-ism-config]",
                }
            },
            "ism",
            True,
            "ISM is installed",
        ),
        ("opensearch", OS_WITHOUT_ISM, "deletion-job", False, "no ISM"),
        ("opensearch", {"operation_mode": "RUNNING"}, "deletion-job", False, "no ISM"),
    ],
)
def test_mode_is_decided_from_the_probe(
    engine: str, answer: Any, mode: str, capable: bool, says: str
) -> None:
    support = support_from_probe(engine, answer)
    assert support.mode == mode and support.engine_capable is capable
    assert says in support.reason


def test_unknown_engine_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        support_from_probe("solr", {})


def test_description_names_the_mode() -> None:
    assert "deletion job" in describe(RetentionSupport("deletion-job", "no ILM: x"))
    assert "no ILM: x" in describe(RetentionSupport("deletion-job", "no ILM: x"))
    assert f"after {90 + ENGINE_MARGIN_DAYS} days" in describe(
        RetentionSupport("ilm", "ILM is running", True), 90
    )
    assert describe(RetentionSupport("ism", "ISM is installed", True)).startswith("retention by ISM")


def test_index_fate_at_month_edges() -> None:
    cutoff = datetime(2026, 2, 10, 12, tzinfo=UTC)
    assert index_fate(month_start("2026.01"), cutoff) == "drop"
    assert index_fate(month_start("2025.12"), cutoff) == "drop"
    assert index_fate(month_start("2026.02"), cutoff) == "trim"
    assert index_fate(month_start("2026.03"), cutoff) == "keep"
    assert index_fate(None, cutoff) == "keep"  # the undated index and foreign names
    at_month_start = datetime(2026, 2, 1, tzinfo=UTC)
    assert index_fate(month_start("2026.01"), at_month_start) == "drop"
    assert index_fate(month_start("2026.02"), at_month_start) == "keep"  # nothing in it is older


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 11, 30)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


@given(document=moments, cutoff=moments)
def test_fate_never_drops_a_younger_document_and_keeps_nothing_older(
    document: datetime, cutoff: datetime
) -> None:
    """For any document and cutoff: a dropped index holds only older documents, a kept one only younger
    ones; only the trimmed boundary month mixes both (and is deleted from by date)."""
    fate = index_fate(month_start(month_suffix(document)), cutoff)
    if fate == "drop":
        assert document < cutoff
    if fate == "keep":
        assert document >= cutoff


@given(
    month=moments, created_late_by=st.timedeltas(min_value=timedelta(days=-1), max_value=timedelta(days=400))
)
def test_engine_policy_margin_outlives_every_document_of_the_month(
    month: datetime, created_late_by: timedelta
) -> None:
    """ILM/ISM count from index creation. An index is created no earlier than a day (clock skew) before
    its month starts; the newest document of the month is before the next month. Deleting at creation +
    keep + margin is then never earlier than that document's age reaching keep."""
    start = month_start(month_suffix(month))
    assert start is not None
    created = start + created_late_by
    keep = timedelta(days=30)
    deleted_at = created + timedelta(days=engine_min_age_days(30))
    newest_possible = next_month(start) - timedelta(microseconds=1)
    assert deleted_at - newest_possible >= keep
