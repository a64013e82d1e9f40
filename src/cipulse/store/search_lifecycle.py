"""Retention on the search store: ILM (Elasticsearch) or ISM (OpenSearch) where the cluster has them,
otherwise cipulse's own deletion job (`cipulse retention`, run by the Helm CronJob).

Which one is active is decided from the engine itself (`GET /_ilm/status`, `GET /_plugins/_ism/policies`),
not from the version or distribution name: managed services and minimal distributions differ, and the
integ-test distributions cipulse is tested on have neither.

Why the engine policy waits a month longer than `keep_days`: ILM's ``min_age`` and ISM's
``min_index_age`` count from the index's creation, not from the dates of its documents (cipulse indices
never roll over). A monthly index is created when its first document arrives, at the earliest at the start
of its month; its newest document is younger than the month's end. Deleting at creation + ``keep_days`` +
`ENGINE_MARGIN_DAYS` (the longest month plus a day of clock skew) therefore never removes a document
younger than ``keep_days``. The deletion job is exact to the second: it drops the months wholly older than
the cutoff and deletes the older documents of the boundary month by id.

Only dated monthly indices are managed: the undated jobs index (jobs with no timestamp at all) and the
watermarks never expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from cipulse.store.search_client import SearchClient
from cipulse.store.search_mappings import IndexLayout, month_start, next_month

RetentionMode = Literal["ilm", "ism", "deletion-job"]
IndexFate = Literal["keep", "drop", "trim"]

# 31 days (the longest month) + 1 day of clock skew between GitHub's timestamps and the cluster's clock
ENGINE_MARGIN_DAYS: Final = 32
ISM_TEMPLATE_PRIORITY: Final = 100
ILM_STATUS_PATH: Final = "/_ilm/status"
ISM_POLICIES_PATH: Final = "/_plugins/_ism/policies"


@dataclass(frozen=True, slots=True)
class RetentionSupport:
    """What removes old monthly indices on this cluster, and why (one line for logs and the CLI)."""

    mode: RetentionMode
    reason: str
    # the engine could run a policy (ILM running / ISM installed), whether or not cipulse's is there yet
    engine_capable: bool = False


@dataclass(frozen=True, slots=True)
class IndexRemoval:
    """What retention removes (or, in a dry run, would remove) from one index."""

    index: str
    documents: int
    whole: bool  # True: the index is dropped; False: only its documents older than the cutoff


# -- pure decisions ---------------------------------------------------------------------------------------


def policy_name(layout: IndexLayout) -> str:
    return f"{layout.prefix}-retention"


def managed_patterns(layout: IndexLayout) -> list[str]:
    """Dated monthly indices only: month suffixes start with the year (2000-2999; GitHub Actions began
    in 2019) while the undated jobs index starts with a letter, so it never matches."""
    return list(layout.dated_patterns)


def engine_min_age_days(keep_days: int) -> int:
    if keep_days < 1:
        raise ValueError(f"keep_days must be at least 1, got {keep_days}")
    return keep_days + ENGINE_MARGIN_DAYS


def ilm_policy(keep_days: int) -> dict[str, Any]:
    """ILM policy body: a single delete phase (no hot phase actions: nothing rolls over)."""
    return {
        "policy": {
            "_meta": {"managed_by": "cipulse", "keep_days": keep_days},
            "phases": {
                "delete": {"min_age": f"{engine_min_age_days(keep_days)}d", "actions": {"delete": {}}},
            },
        }
    }


def ism_policy(keep_days: int, patterns: list[str]) -> dict[str, Any]:
    """ISM policy body: hot -> delete after the age, attached to new indices by its `ism_template`
    (the old `policy_id` index setting stopped working in Open Distro 1.13)."""
    return {
        "policy": {
            "description": f"cipulse: delete monthly indices {keep_days} days after their last month",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [
                        {
                            "state_name": "delete",
                            "conditions": {"min_index_age": f"{engine_min_age_days(keep_days)}d"},
                        }
                    ],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": patterns, "priority": ISM_TEMPLATE_PRIORITY}],
        }
    }


def template_settings(mode: RetentionMode, layout: IndexLayout) -> dict[str, Any]:
    """Index settings the dated templates carry: the ILM policy name; nothing for ISM (its policy's
    `ism_template` attaches it) or for the deletion job."""
    return {"index.lifecycle.name": policy_name(layout)} if mode == "ilm" else {}


def support_from_probe(engine: str, answer: Any) -> RetentionSupport:
    """Decide from the engine's decoded answer to its lifecycle probe (`probe_path`).

    Elasticsearch: ``operation_mode`` RUNNING means ILM works; STOPPED/STOPPING means an attached policy
    would not run, so the deletion job is what retains. OpenSearch: a policy list (or the ISM plugin's
    own "index_not_found" for its not yet created config index) means the index-management plugin is
    installed. An error answer ("no handler found", a 405, a 403 for a user without the privilege to
    read lifecycle status) means cipulse cannot rely on a lifecycle feature.
    """
    error = answer.get("error") if isinstance(answer, dict) else "not a JSON object"
    if engine == "elasticsearch":
        mode = answer.get("operation_mode") if error is None else None
        if mode == "RUNNING":
            return RetentionSupport("ilm", "ILM is running", engine_capable=True)
        if mode is not None:
            return RetentionSupport("deletion-job", f"ILM is {mode}")
        return RetentionSupport("deletion-job", f"no ILM: GET {ILM_STATUS_PATH} answered {_short(error)}")
    if engine == "opensearch":
        if (error is None and "policies" in answer) or _error_type(error) == "index_not_found_exception":
            return RetentionSupport("ism", "ISM is installed", engine_capable=True)
        return RetentionSupport("deletion-job", f"no ISM: GET {ISM_POLICIES_PATH} answered {_short(error)}")
    raise ValueError(f"unknown engine {engine!r}")


def _error_type(error: Any) -> str | None:
    return error.get("type") if isinstance(error, dict) else None


def _short(error: Any) -> str:
    if isinstance(error, dict):
        error = f"{error.get('type')}: {error.get('reason')}"
    return str(error)[:160]


def probe_path(engine: str) -> str:
    return ILM_STATUS_PATH if engine == "elasticsearch" else ISM_POLICIES_PATH


def index_fate(suffix_start: datetime | None, cutoff: datetime) -> IndexFate:
    """A monthly index wholly older than the cutoff is dropped; the month holding the cutoff is trimmed
    (only its older documents go); later months, the undated index and foreign names are kept."""
    if suffix_start is None or suffix_start >= cutoff:
        return "keep"
    return "drop" if next_month(suffix_start) <= cutoff else "trim"


def fate_of(layout: IndexLayout, index: str, cutoff: datetime) -> IndexFate:
    return index_fate(month_start(layout.suffix(index)), cutoff)


# -- talking to the engine ----------------------------------------------------------------------------------


def detect_support(client: SearchClient, engine: str, layout: IndexLayout) -> RetentionSupport:
    """Probe the engine; when it could run a policy, say whether cipulse's policy is installed yet (the
    mode is then "ilm"/"ism"), otherwise the deletion job is what retains until `install_policy` runs."""
    answer = client.request("GET", probe_path(engine), ok=(200, 400, 401, 403, 404, 405))
    support = support_from_probe(engine, answer)
    if not support.engine_capable:
        return support
    if not _policy_exists(client, engine, policy_name(layout)):
        return RetentionSupport(
            "deletion-job",
            f"{support.reason} but the {policy_name(layout)} policy is not installed yet "
            "(`cipulse retention --keep-days N` installs it)",
            engine_capable=True,
        )
    return support


def _policy_path(engine: str, name: str) -> str:
    return f"/_ilm/policy/{name}" if engine == "elasticsearch" else f"{ISM_POLICIES_PATH}/{name}"


def _policy_exists(client: SearchClient, engine: str, name: str) -> bool:
    """A user who may not read policies cannot rely on one either: treated as not installed."""
    answer = client.request("GET", _policy_path(engine, name), ok=(200, 401, 403, 404))
    return bool(answer) and "error" not in answer


def install_policy(client: SearchClient, engine: str, layout: IndexLayout, keep_days: int) -> None:
    """Create or update cipulse's policy and attach it to the dated indices that exist already (new ones
    get it from the index template on Elasticsearch, from the policy's ism_template on OpenSearch).

    Only called when the engine can run it: never exercised against a real ILM/ISM cluster in cipulse's
    own tests (the distributions available to them have neither)."""
    name = policy_name(layout)
    patterns = ",".join(managed_patterns(layout))
    if engine == "elasticsearch":
        client.request("PUT", _policy_path(engine, name), body=ilm_policy(keep_days))
        client.request(
            "PUT",
            f"/{patterns}/_settings",
            body={"index.lifecycle.name": name},
            params={"allow_no_indices": "true", "ignore_unavailable": "true"},
        )
        return
    body = ism_policy(keep_days, managed_patterns(layout))
    current = client.request("GET", _policy_path(engine, name), ok=(200, 404))
    if current and "error" not in current and "_seq_no" in current:
        params = {"if_seq_no": str(current["_seq_no"]), "if_primary_term": str(current["_primary_term"])}
        client.request("PUT", _policy_path(engine, name), body=body, params=params)
        # indices already managed keep the policy version they enrolled with until told to change
        client.request("POST", f"/_plugins/_ism/change_policy/{patterns}", body={"policy_id": name})
    else:
        client.request("PUT", _policy_path(engine, name), body=body)
    client.request("POST", f"/_plugins/_ism/add/{patterns}", body={"policy_id": name})


def describe(support: RetentionSupport, keep_days: int | None = None) -> str:
    """One line for logs and terminals (never a URL or a credential)."""
    if support.mode == "deletion-job":
        return f"retention by cipulse's deletion job ({support.reason})"
    engine = "ILM" if support.mode == "ilm" else "ISM"
    after = f" after {engine_min_age_days(keep_days)} days" if keep_days else ""
    return (
        f"retention by {engine} (whole monthly indices{after}) "
        "plus cipulse's deletion job for the boundary month"
    )
