"""The REST subset Elasticsearch 8/9 and OpenSearch 2/3 share, over one httpx client.

The official `elasticsearch` client refuses to talk to OpenSearch (product check), and the two official
clients diverge; every call cipulse needs (index templates, _bulk, _search with aggregations, _count,
_refresh, documents by id) has the same shape in both, so one small client serves both engines.
Connection problems and "cluster not ready" answers become `StoreUnavailable` (callers spool and retry);
anything else the engine rejects becomes `SearchRequestError` with the engine's own reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx
import orjson

from cipulse.redact import redact_url, split_credentials
from cipulse.store.base import StoreUnavailable

Engine = Literal["elasticsearch", "opensearch"]
# Answers that mean "not now" rather than "never": the cluster is starting, recovering or overloaded.
TRANSIENT_STATUSES: Final = frozenset({429, 502, 503, 504})
BULK_RETRIES: Final = 5
# A _bulk answer names every item; only the status and the error of each are read, so only those are sent.
BULK_ANSWER_FIELDS: Final = "errors,items.*.status,items.*.error"
# How an answer with no failed item begins (engines write compact JSON, in the order took, errors, items;
# the filter above drops took): such an answer's items need not be decoded.
CLEAN_BULK_ANSWER: Final = b'{"errors":false,'


class SearchRequestError(RuntimeError):
    """The engine understood the request and refused it (mapping conflict, bad query, ...)."""


class BulkItemsFailed(SearchRequestError):
    """Some documents of a bulk request were rejected; nothing is dropped silently: the ids are listed."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        shown = "; ".join(f"{doc_id}: {reason}" for doc_id, reason in list(self.failures.items())[:5])
        more = f" (and {len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        super().__init__(f"{len(self.failures)} document(s) rejected by the search engine: {shown}{more}")


@dataclass(frozen=True, slots=True)
class EngineInfo:
    engine: Engine
    version: str
    modules: frozenset[str]

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


@dataclass(slots=True)  # not frozen: one per document written, and frozen ones cost 3x to build
class BulkAction:
    """One line pair of a _bulk body: index (with a document, or its JSON already encoded) or delete."""

    op: Literal["index", "delete"]
    index: str
    doc_id: str
    document: Mapping[str, Any] | bytes | str | None = None


class SearchClient:
    """`url` may carry `user:password@`: those credentials authenticate every request (explicit
    `username`/`password` win) but never appear in messages or reprs, which show only `self.url`, the
    redacted form: errors travel to CR status, Events and terminals."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        base_url, url_username, url_password = split_credentials(url.rstrip("/"))
        if username is None and url_username is not None:
            username, password = url_username, url_password
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.url = redact_url(url.rstrip("/"))
        self._http = httpx.Client(base_url=base_url, auth=auth, timeout=timeout)

    def __repr__(self) -> str:
        return f"SearchClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200, 201),
    ) -> Any:
        """Send one request; return the decoded JSON answer (None for an empty one)."""
        content = self._send(method, path, body=body, content=content, params=params, ok=ok)
        return orjson.loads(content) if content else None  # several times json's speed

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200, 201),
    ) -> bytes:
        """Send one request; return the answer's bytes once its status is an accepted one."""
        headers = {"Content-Type": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/x-ndjson"
        elif body is not None:
            content = json.dumps(body).encode()
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.TransportError as error:
            raise StoreUnavailable(f"search engine at {self.url} unreachable: {error!r}") from error
        if response.status_code in TRANSIENT_STATUSES:
            raise StoreUnavailable(
                f"search engine at {self.url} answered {response.status_code} to {method} {path}: "
                f"{response.text[:300]}"
            )
        if response.status_code not in set(ok):
            raise SearchRequestError(
                f"{method} {path} failed with {response.status_code}: {response.text[:1000]}"
            )
        return response.content

    # -- engine ---------------------------------------------------------------------------------------

    def detect(self) -> EngineInfo:
        """Which engine this is, from `GET /` (Elasticsearch's minimal builds lack it: fall back to the
        product header every Elasticsearch 7.14+ answer carries, and to the local node's info)."""
        try:
            response = self._http.get("/")
        except httpx.TransportError as error:
            raise StoreUnavailable(f"search engine at {self.url} unreachable: {error!r}") from error
        if response.status_code in TRANSIENT_STATUSES:
            raise StoreUnavailable(f"search engine at {self.url} answered {response.status_code}")
        if response.status_code in (401, 403):
            raise SearchRequestError(f"search engine at {self.url} refused the credentials")
        engine: Engine | None = None
        if response.status_code == 200:
            distribution = response.json().get("version", {}).get("distribution")
            engine = "opensearch" if distribution == "opensearch" else None
        if response.headers.get("x-elastic-product") == "Elasticsearch":
            engine = "elasticsearch"
        nodes = self.request(
            "GET",
            "/_nodes/_local",
            params={"filter_path": "nodes.*.version,nodes.*.modules.name,nodes.*.plugins.name"},
        )
        node = next(iter(nodes["nodes"].values()))
        modules = frozenset(m["name"] for m in node.get("modules", []) + node.get("plugins", []))
        if engine is None:
            if response.status_code == 200 and response.json().get("tagline") == "You Know, for Search":
                engine = "elasticsearch"
            else:
                raise SearchRequestError(f"{self.url} is neither Elasticsearch nor OpenSearch")
        return EngineInfo(engine=engine, version=str(node["version"]), modules=modules)

    # -- documents ------------------------------------------------------------------------------------

    def bulk(
        self, actions: Sequence[BulkAction], *, refresh: bool = False, body: bytes | None = None
    ) -> None:
        """Apply every action or raise. Transient rejections (429/503 per item) are retried with backoff
        and reported as `StoreUnavailable` if they persist; permanent ones raise `BulkItemsFailed` naming
        every failed id once the rest is written. Deleting a missing document is not a failure.
        ``body`` is `bulk_body` of ``actions`` when the caller encoded it ahead (while another request
        was in flight); retries encode only the actions they repeat."""
        pending = list(actions)
        failures: dict[str, str] = {}
        delay = 0.2
        for attempt in range(BULK_RETRIES + 1):
            content = self._send(
                "POST",
                "/_bulk",
                content=body if attempt == 0 and body is not None else bulk_body(pending),
                params={"refresh": "true" if refresh else "false", "filter_path": BULK_ANSWER_FIELDS},
            )
            answer: dict[str, Any] = (
                {"errors": False} if content.startswith(CLEAN_BULK_ANSWER) else orjson.loads(content)
            )
            transient: list[BulkAction] = []
            if answer.get("errors"):
                for action, item in zip(pending, answer["items"], strict=True):
                    result = item.get(action.op, {})
                    status = int(result.get("status", 500))
                    if "error" not in result or (action.op == "delete" and status == 404):
                        continue
                    if status in TRANSIENT_STATUSES:
                        transient.append(action)
                    else:
                        failures[action.doc_id] = _reason(result["error"])
            if not transient:
                if failures:
                    raise BulkItemsFailed(failures)
                return
            if attempt < BULK_RETRIES:
                pending = transient
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        rejected = f"; {len(failures)} more were refused outright" if failures else ""
        raise StoreUnavailable(
            f"search engine at {self.url} kept rejecting {len(transient)} document(s) as overloaded or "
            f"not ready, e.g. {transient[0].doc_id}{rejected}"
        )

    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        answer = self.request("GET", f"/{index}/_doc/{quote(doc_id, safe='')}", ok=(200, 404))
        if not answer or not answer.get("found"):
            return None
        source: dict[str, Any] = answer["_source"]
        return source

    def put_document(self, index: str, doc_id: str, document: Mapping[str, Any]) -> None:
        self.request("PUT", f"/{index}/_doc/{quote(doc_id, safe='')}", body=document)

    def search(self, index: str, body: Mapping[str, Any], **params: str) -> dict[str, Any]:
        query = {"ignore_unavailable": "true", "allow_no_indices": "true", **params}
        answer: dict[str, Any] = self.request("POST", f"/{index}/_search", body=body, params=query)
        return answer

    def msearch(self, searches: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Several (index, body) searches in one request; their answers in the same order, failed ones
        included (`incomplete` tells them apart). A missing index answers with no hits."""
        header = {"ignore_unavailable": True, "allow_no_indices": True}
        lines = [
            line
            for index, body in searches
            for line in (orjson.dumps({"index": index, **header}), orjson.dumps(body))
        ]
        answer = self.request("POST", "/_msearch", content=b"\n".join([*lines, b""]))
        answers: list[dict[str, Any]] = answer["responses"]
        if len(answers) != len(searches):
            raise SearchRequestError(f"_msearch answered {len(answers)} times to {len(searches)} searches")
        return answers

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": query} if query else None
        answer = self.request(
            "POST",
            f"/{index}/_count",
            body=body,
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        return int(answer["count"])

    def refresh(self, index: str) -> None:
        self.request(
            "POST", f"/{index}/_refresh", params={"ignore_unavailable": "true", "allow_no_indices": "true"}
        )

    def indices(self, pattern: str) -> list[str]:
        """Open indices matching a pattern, a comma-separated list or a concrete name (none: [])."""
        answer = self.request(
            "GET",
            f"/_cat/indices/{pattern}",
            params={"format": "json", "h": "index", "expand_wildcards": "open"},
            ok=(200, 404),
        )
        if not isinstance(answer, list):  # 404: a concrete name that does not exist
            return []
        return sorted(row["index"] for row in answer)

    def delete_index(self, index: str) -> None:
        self.request("DELETE", f"/{index}", ok=(200, 404))


def bulk_body(actions: Sequence[BulkAction]) -> bytes:
    """The NDJSON body of a _bulk request (index names are cipulse's own, never need escaping)."""
    lines: list[bytes] = []
    for action in actions:
        lines.append(
            b'{"%s":{"_index":"%s","_id":%s}}'
            % (action.op.encode(), action.index.encode(), orjson.dumps(action.doc_id))
        )
        if action.op != "index":
            continue
        document = action.document
        if isinstance(document, bytes):
            lines.append(document)
        elif isinstance(document, str):
            lines.append(document.encode())
        else:
            lines.append(json.dumps(document, separators=(",", ":")).encode())
    lines.append(b"")
    return b"\n".join(lines)


def incomplete(answer: Mapping[str, Any]) -> str | None:
    """Why one search's answer may miss documents it was asked about (None: it covers them all): the
    search failed, some shard did not answer, or it timed out."""
    if "error" in answer:
        return f"failed with {answer.get('status', 500)}: {_reason(answer['error'])}"
    failed = answer.get("_shards", {}).get("failed")
    if failed:
        return f"{failed} shard(s) did not answer"
    if answer.get("timed_out"):
        return "timed out"
    return None


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        reason = f"{error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        return f"{reason} (caused by {_reason(cause)})" if cause else reason
    return str(error)
