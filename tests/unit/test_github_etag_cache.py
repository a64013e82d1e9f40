"""The ETag cache keeps answers compactly and within its bounds."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from cipulse.github.etag_cache import EtagCache


def _runs_page(seed: int, count: int = 100) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "total_count": count,
        "workflow_runs": [
            {
                "id": rng.randrange(10**9),
                "name": "CI",
                "head_branch": "main",
                "head_sha": f"{rng.getrandbits(160):040x}",
                "status": "completed",
                "conclusion": rng.choice(["success", "failure"]),
                "created_at": "2026-11-20T10:00:00Z",
                "updated_at": "2026-11-20T10:05:00Z",
                "repository": {"full_name": "octo/repo", "owner": {"login": "octo"}},
            }
            for _ in range(count)
        ],
    }


def _deep_size(value: Any) -> int:
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(_deep_size(k) + _deep_size(v) for k, v in value.items())
    elif isinstance(value, list):
        size += sum(_deep_size(v) for v in value)
    return size


def test_an_answer_comes_back_equal_and_as_a_fresh_copy() -> None:
    cache = EtagCache()
    page = _runs_page(1)
    cache.put("u", 'W/"1"', page)
    etag, data = cache.get("u") or ("", None)
    assert etag == 'W/"1"' and data == page
    data["workflow_runs"].clear()
    assert cache.get("u") == ('W/"1"', page)


def test_answers_are_held_much_smaller_than_their_parsed_form() -> None:
    cache = EtagCache()
    pages = [_runs_page(seed) for seed in range(20)]
    for seed, page in enumerate(pages):
        cache.put(f"u{seed}", "e", page)
    assert cache.size_bytes * 5 < sum(_deep_size(p) for p in pages)


def test_the_cache_stays_within_its_byte_bound_dropping_the_least_recently_used() -> None:
    probe = EtagCache()
    probe.put("p", "e", _runs_page(0))
    budget = probe.size_bytes * 3 + probe.size_bytes // 2
    cache = EtagCache(max_bytes=budget)
    for seed in range(3):
        cache.put(f"u{seed}", "e", _runs_page(seed))
    assert cache.get("u0") is not None  # touched: now the most recently used
    for seed in range(3, 6):
        cache.put(f"u{seed}", "e", _runs_page(seed))
    assert cache.size_bytes <= budget
    assert cache.get("u1") is None and cache.get("u2") is None
    assert cache.get("u5") is not None


def test_an_answer_larger_than_the_per_answer_bound_is_not_cached() -> None:
    cache = EtagCache(max_answer_bytes=64)
    cache.put("big", "e", _runs_page(1))
    cache.put("small", "e", {"workflows": []})
    assert cache.get("big") is None and cache.get("small") == ("e", {"workflows": []})


def test_a_durable_entry_replaced_by_a_too_large_answer_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "etags.json"
    cache = EtagCache(path, max_answer_bytes=200)
    cache.put("w", "e1", {"workflows": []}, durable=True)
    cache.put("w", "e2", _runs_page(2), durable=True)
    assert EtagCache(path).get("w") is None


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory where no file can be created: a read-only one, or /sys when running as root (which
    writes through any mode bits)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        (directory / "probe").write_text("")
    except OSError:
        return directory
    return Path("/sys")


def test_a_read_only_cache_directory_costs_only_the_saved_requests(tmp_path: Path) -> None:
    directory = _unwritable_directory(tmp_path)
    before = set(directory.iterdir())
    cache = EtagCache(directory / "etags.json")
    page = _runs_page(3)
    cache.put("u", 'W/"3"', page, durable=True)  # saving fails: logged, never raised
    assert cache.get("u") == ('W/"3"', page)
    assert set(directory.iterdir()) == before


def test_a_file_in_place_of_the_cache_directory_costs_only_the_saved_requests(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    cache = EtagCache(tmp_path / "not-a-directory" / "etags.json")
    cache.put("u", 'W/"4"', _runs_page(4), durable=True)
    assert cache.get("u") == ('W/"4"', _runs_page(4))
