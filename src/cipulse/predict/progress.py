"""A rich progress bar counting model fits (training and evaluation take minutes on real histories)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def fit_progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    """Yields a callback to call after each fit; the bar goes to stderr so reports on stdout stay clean."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
