"""`cipulse retention`: delete stored CI history older than N days (the documented deletion job).

Runs by hand or from the Helm chart's CronJob. On a search store it drops whole monthly indices that are
entirely older than the cutoff and deletes the older documents of the boundary month by id (a month that
still holds younger data is never dropped); on SQLite it deletes the rows in one transaction. Both are
idempotent: after an interruption, running it again finishes the job. Where the cluster has ILM/ISM, it
also installs the engine policy (see `search_lifecycle`), so whole old months go even if the job stops.

Errors (bad input, unreachable or refusing store) are one line on stderr and exit code 2; URLs in messages
are redacted. Search-store credentials come from CIPULSE_STORE_USERNAME/CIPULSE_STORE_PASSWORD only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from cipulse.store.base import Store


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _cutoff(keep_days: int | None, before: str | None, now: datetime) -> datetime:
    if (keep_days is None) == (before is None):
        raise _fail("give exactly one of --keep-days N or --before DATE")
    if keep_days is not None:
        if keep_days < 1:
            raise _fail(f"--keep-days must be at least 1, got {keep_days}")
        try:
            return now - timedelta(days=keep_days)
        except OverflowError:
            raise _fail(f"--keep-days {keep_days} reaches back before the year 1") from None
    assert before is not None
    try:
        moment = datetime.fromisoformat(before.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(
            f"--before expects a date like 2025-01-01 or 2025-01-01T00:00:00Z, not {before!r}"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise _fail(f"--before {before} is in the future: that would delete recent history")
    return moment


def _shown(url: str) -> str:
    """The URL as messages may show it: `user:password@` masked, even in a URL that does not parse."""
    from cipulse.redact import redact_url

    try:
        return redact_url(url)
    except ValueError:  # e.g. a port that is not a number
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.rsplit('@', 1)[-1]}" if "@" in rest else url


def _check_url(url: str) -> None:
    """Catch typos before anything is opened: a mistyped SQLite path would otherwise create an empty
    database and report that nothing was deleted."""
    shown = _shown(url)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path.startswith("/") or path in ("/", "/:memory:"):
            raise _fail(f"bad --store {shown}: expected sqlite:///relative.db or sqlite:////absolute.db")
        if not Path(path[1:]).is_file():
            raise _fail(f"no SQLite database at {path[1:]} (from --store {shown})")
        return
    if url.startswith(("http://", "https://")):
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError:
            raise _fail(f"bad --store {shown}: not a valid URL") from None
        if not parts.hostname:
            raise _fail(f"bad --store {shown}: no host")
        return
    raise _fail(f"bad --store {shown}: use sqlite:///path.db or http(s)://host:port")


def retention(
    store: str = typer.Option(
        ...,
        "--store",
        envvar="CIPULSE_STORE_URL",
        help="sqlite:///path.db or http(s)://host:port (credentials: CIPULSE_STORE_USERNAME/PASSWORD).",
    ),
    keep_days: int | None = typer.Option(None, "--keep-days", help="Keep this many days of history."),
    before: str | None = typer.Option(
        None, "--before", help="Instead of --keep-days: delete before this date."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
    index_prefix: str = typer.Option("cipulse", "--index-prefix", help="Search store index prefix."),
) -> None:
    """Delete runs and job attempts older than the cutoff (whole monthly indices on a search store)."""
    import os

    from cipulse.store import StoreUnavailable, open_store
    from cipulse.store.search_client import SearchRequestError
    from cipulse.store.search_mappings import IndexLayout

    cutoff = _cutoff(keep_days, before, datetime.now(UTC))
    _check_url(store)
    try:
        IndexLayout(index_prefix)
    except ValueError as error:
        raise _fail(f"bad --index-prefix: {error}") from None
    shown = _shown(store)

    def failure(what: str, error: Exception) -> typer.Exit:
        return _fail(f"{what} {shown}: {str(error).replace(store, shown)}")

    options: dict[str, object] = {}
    if store.startswith("http"):
        options = {
            "index_prefix": index_prefix,
            "username": os.environ.get("CIPULSE_STORE_USERNAME") or None,
            "password": os.environ.get("CIPULSE_STORE_PASSWORD") or None,
            "read_only": dry_run,  # a dry run needs no write rights (no index templates installed)
        }
    try:
        opened = open_store(store, **options)
    except ValueError as error:
        raise failure("bad --store", error) from None
    except (StoreUnavailable, SearchRequestError) as error:
        raise failure("cannot open the store", error) from None
    try:
        what = "dry run: nothing is deleted" if dry_run else "deleting"
        typer.echo(f"{shown}: {what}; cutoff {cutoff.isoformat()} (runs and job attempts before it go)")
        _run(opened, cutoff, keep_days, dry_run)
    except (StoreUnavailable, SearchRequestError) as error:
        raise failure("retention stopped part-way (run it again to finish) on", error) from None
    finally:
        opened.close()


def _run(store: Store, cutoff: datetime, keep_days: int | None, dry_run: bool) -> None:
    from cipulse.store.search import SearchStore
    from cipulse.store.search_lifecycle import describe

    if isinstance(store, SearchStore):
        support = store.retention
        if keep_days is not None and not dry_run:
            support = store.install_lifecycle(keep_days)
        typer.echo(f"{store.engine} {store.info.version}: {describe(support, keep_days)}")
        removals = store.remove_older_than(cutoff, dry_run=dry_run)
        for removal in removals:
            if removal.whole:
                action = "would drop" if dry_run else "dropped"
                typer.echo(f"{action} index {removal.index} ({removal.documents} documents, all older)")
            elif removal.documents:
                action = "would delete" if dry_run else "deleted"
                typer.echo(f"{action} {removal.documents} older documents from index {removal.index}")
        total = sum(removal.documents for removal in removals)
        dropped = sum(1 for removal in removals if removal.whole)
        verb = "would remove" if dry_run else "removed"
        typer.echo(f"{verb} {total} documents ({dropped} whole monthly indices)")
        return
    if dry_run:
        runs, jobs = _count_older(store, cutoff)
        typer.echo(f"would delete {runs} runs and {jobs} job attempts")
        return
    typer.echo(f"deleted {store.delete_older_than(cutoff)} runs and job attempts")


def _count_older(store: Store, cutoff: datetime) -> tuple[int, int]:
    """What `delete_older_than` would delete, through the Store protocol only (a dry run may scan)."""
    from cipulse.metrics.derive import job_window_time

    runs = sum(1 for run in store.iter_runs() if run.created_at < cutoff)
    jobs = 0
    for job in store.iter_jobs():
        moment = job_window_time(job)
        jobs += moment is not None and moment < cutoff
    return runs, jobs
