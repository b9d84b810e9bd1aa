"""The progress bar of long work (``goalline prune``, ``scripts/fuzz``): rich, on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def count_bar(
    total: int, label: str, *, enabled: bool = True, failures: bool = False
) -> Iterator[Callable[..., None]]:
    """A bar over ``total`` items; yields ``update(done, **fields)``. ``failures`` adds a red
    "N failing" column, fed by ``update(done, failures=N)``."""
    if not enabled or not total:
        yield lambda *_args, **_fields: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[ProgressColumn | str] = [TextColumn("{task.description}"), BarColumn()]
    columns.append(MofNCompleteColumn())
    if failures:
        columns.append(TextColumn("[red]{task.fields[failures]} failing"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    bar = Progress(*columns, console=Console(stderr=True))
    fields: dict[str, Any] = {"failures": 0} if failures else {}
    with bar:
        task = bar.add_task(label, total=total, **fields)
        yield lambda done, **more: bar.update(task, completed=done, **more)
