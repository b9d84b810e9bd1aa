"""``goalline import profiles FILE``: stream a CSV or JSON Lines file of profiles into a database
(issue 4, item 4).

The file is read a line at a time and sent in batches through the same unit of work as
``profiles/import_batch`` (pipeline/bulk.py), called on the store directly: memory stays flat
whatever the file's size. Matching makes a second run of the same file update every row and
create nothing. Rows that fail are written, with the reason, to a rejects file in the input's
format, so they can be fixed and imported again.

CSV: the header row names the fields (``email``, ``phones``, system fields, the database's custom
fields); an empty cell is an absent field; ``phones`` may hold several numbers separated by ``;``
or ``,``; a tags field holds tags separated by ``;``. JSON Lines: one profile data object per line
(or an ``import_batch`` item, with identifiers and a ``data`` object).
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from goalline.model import SYSTEM_FIELDS
from goalline.pipeline import bulk
from goalline.pipeline.profiles import BUILTIN_FIELDS
from goalline.storage.ports import Store

FileFormat = Literal["csv", "jsonl"]
FORMATS: dict[str, FileFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_BATCH = 1000
_PHONE_SEPARATORS = re.compile(r"[;,]")


class ImportUsageError(ValueError):
    """The command line or the file's header cannot work (exit code 2); nothing was imported."""


@dataclass
class Row:
    """One record of the file: the item to import, or why it cannot be read."""

    line: int
    original: Any
    item: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Summary:
    rows: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    seconds: float = 0.0
    rejects: Path | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "rejects": None if self.rejects is None else str(self.rejects),
        }


@dataclass(frozen=True, kw_only=True)
class Job:
    """What to import, where, and how to match."""

    path: Path
    db_id: int
    format: FileFormat
    matching: str = "email"
    field_name: str | None = None
    batch_size: int = DEFAULT_BATCH
    rejects: Path | None = None
    phone_region: str = ""

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.path.with_suffix(f".rejects.{self.format}")


def file_format(path: Path, given: str | None) -> FileFormat:
    if given is not None:
        return "jsonl" if given == "jsonl" else "csv"
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise ImportUsageError(
            f"cannot tell the format of {path.name!r} from its extension: "
            "use .csv or .jsonl, or pass --format csv|jsonl"
        )
    return found


# -- reading ----------------------------------------------------------------------------------


@dataclass
class Counter:
    """Bytes of the file read so far (what the progress bar measures)."""

    bytes: int = 0
    bad_lines: set[int] = field(default_factory=set)


def _lines(stream: IO[bytes], counter: Counter) -> Iterator[str]:
    """The file's lines as text; undecodable ones are noted (their rows get rejected)."""
    for number, raw in enumerate(stream, start=1):
        counter.bytes += len(raw)
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            counter.bad_lines.add(number)
            yield raw.decode("utf-8", errors="replace")


def csv_rows(
    reader: Any, header: list[str], counter: Counter, fields: dict[str, str]
) -> Iterator[Row]:
    """CSV records (after the header) as flat import items."""
    names = [name.strip() for name in header]
    tags = {name for name in names if fields.get(name) == "tags"}
    last = reader.line_num
    for record in reader:
        line, last = last + 1, reader.line_num
        if not record:
            continue
        if any(line <= bad <= last for bad in counter.bad_lines):
            yield Row(line, record, error="not valid UTF-8")
        elif len(record) != len(names):
            yield Row(line, record, error=f"{len(record)} columns, but the header has {len(names)}")
        else:
            yield Row(line, record, item=csv_item(names, record, tags))


def csv_header(reader: Any, fields: dict[str, str]) -> list[str]:
    """The header row, checked: it must name only fields the database has."""
    header: list[str] | None = next(reader, None)
    if not header:
        raise ImportUsageError("the CSV file is empty: expected a header row of field names")
    check_header([name.strip() for name in header], fields)
    return header


def check_header(names: list[str], fields: dict[str, str]) -> None:
    known = {*BUILTIN_FIELDS, *SYSTEM_FIELDS, *fields, "profile_id"}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ImportUsageError(
            f"CSV column(s) {', '.join(map(repr, unknown))} are not fields of the database "
            "(add custom fields with: goalline db field add)"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ImportUsageError(f"CSV column(s) {', '.join(map(repr, repeated))} appear twice")


def csv_item(names: list[str], record: list[str], tags: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for name, cell in zip(names, record, strict=True):
        value = cell.strip()
        if not value:
            continue
        if name == "phones":
            item[name] = [p.strip() for p in _PHONE_SEPARATORS.split(value) if p.strip()]
        elif name in tags:
            item[name] = [t.strip() for t in value.split(";") if t.strip()]
        else:
            item[name] = value
    return item


def jsonl_rows(stream: IO[bytes], counter: Counter) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped."""
    for line, text in enumerate(_lines(stream, counter), start=1):
        if not text.strip():
            continue
        if line in counter.bad_lines:
            yield Row(line, text.rstrip("\r\n"), error="not valid UTF-8")
            continue
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            yield Row(line, text.rstrip("\r\n"), error=f"not valid JSON ({exc})")
            continue
        if not isinstance(value, dict):
            yield Row(line, value, error="must be a JSON object of profile fields")
        else:
            yield Row(line, value, item=value)


# -- rejects ----------------------------------------------------------------------------------


class Rejects:
    """The rejects file, opened on the first failed row: the row as read, with its line and
    the reason (CSV: ``line,error`` columns before the original ones)."""

    def __init__(self, path: Path, fmt: FileFormat, header: list[str] | None) -> None:
        self.path = path
        self.format = fmt
        self.header = header
        self._file: IO[str] | None = None
        self._csv: Any = None
        self.count = 0

    def add(self, row: Row, reason: str) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            if self.format == "csv":
                self._csv = csv.writer(self._file)
                self._csv.writerow(["line", "error", *(self.header or [])])
        if self.format == "csv":
            self._csv.writerow([row.line, reason, *row.original])
        else:
            record = {"line": row.line, "error": reason, "data": row.original}
            self._file.write(msgspec.json.encode(record).decode() + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# -- the import loop --------------------------------------------------------------------------

Progress = Callable[[int, int], None]
"""Called after each batch with (bytes read, rows done)."""


def prepare(store: Store, job: Job) -> dict[str, str]:
    """Check the job against the database; return its custom fields."""

    def read(uow: Any) -> tuple[bool, dict[str, str]]:
        return uow.get_database(job.db_id) is not None, uow.fields_of(job.db_id)

    if job.rejects_path.resolve() == job.path.resolve():
        raise ImportUsageError("--rejects must not be the file being imported")
    exists, fields = store.call(read, write=False)
    if not exists:
        raise ImportUsageError(f"database {job.db_id} not found (goalline db list)")
    if job.matching == "custom":
        if job.field_name is None:
            raise ImportUsageError("--matching custom needs --field NAME")
        if job.field_name not in fields:
            raise ImportUsageError(f"database {job.db_id} has no field {job.field_name!r}")
    elif job.field_name is not None:
        raise ImportUsageError("--field is only for --matching custom")
    return fields


def check(store: Store, job: Job) -> None:
    """Every usage check ``run`` makes, before anything is imported (and any progress shown)."""
    fields = prepare(store, job)
    if job.format == "csv":
        with job.path.open("rb") as stream:
            csv_header(csv.reader(_lines(stream, Counter())), fields)


def run(store: Store, job: Job, progress: Progress | None = None) -> Summary:
    """Import ``job.path``; return the counts. Each batch is one transaction.

    Two batches are in flight at most: while the store writes one, this thread reads and
    checks the next (the checks are pure; SQLite and PostgreSQL release the GIL while they
    work), so memory stays at two batches whatever the file's size.
    """
    fields = prepare(store, job)
    summary = Summary()
    started = time.monotonic()
    counter = Counter()
    with job.path.open("rb") as stream, _few_collections():
        header: list[str] | None = None
        if job.format == "csv":
            reader = csv.reader(_lines(stream, counter))
            header = csv_header(reader, fields)
            rows = csv_rows(reader, header, counter, fields)
        else:
            rows = jsonl_rows(stream, counter)
        rejects = Rejects(job.rejects_path, job.format, header)
        writer = Writer(store, job, fields, summary, rejects)
        try:
            for batch in _batches(rows, job.batch_size):
                writer.send(batch)
                if progress is not None:
                    progress(counter.bytes, summary.rows)
            writer.finish()
        finally:
            writer.close()
            rejects.close()
    if progress is not None:
        progress(counter.bytes, summary.rows)
    summary.seconds = time.monotonic() - started
    summary.rejects = rejects.path if rejects.count else None
    return summary


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Writer:
    """Checks a batch here and hands it to one background thread that runs the unit of work
    (``bulk.apply_items``) on the store; ``send`` waits for the previous batch first."""

    def __init__(
        self,
        store: Store,
        job: Job,
        fields: dict[str, str],
        summary: Summary,
        rejects: Rejects,
    ) -> None:
        self.store = store
        self.job = job
        self.fields = fields
        self.summary = summary
        self.rejects = rejects
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="goalline-import")
        self._pending: tuple[list[Row], Future[list[bulk.ItemResult]]] | None = None
        self._written = 0

    def send(self, batch: list[Row]) -> None:
        checked = bulk.check_items(
            [row.item for row in batch if row.item is not None],
            fields=self.fields,
            db_id=self.job.db_id,
            matching=self.job.matching,
            field_name=self.job.field_name,
            phone_region=self.job.phone_region,
        )
        self.finish()
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        future = self._pool.submit(
            self.store.call,
            lambda uow: bulk.apply_items(
                uow, db_id=self.job.db_id, fields=self.fields, checked=checked, now=now
            ),
        )
        self._pending = (batch, future)

    def finish(self) -> None:
        """Wait for the batch in flight and count its results."""
        if self._pending is None:
            return
        batch, future = self._pending
        self._pending = None
        results = iter(future.result())
        for row in batch:  # in file order, unreadable rows included
            self.summary.rows += 1
            if row.item is None:
                self.summary.failed += 1
                self.rejects.add(row, row.error or "unreadable")
                continue
            result = next(results)
            if result.error is not None:
                self.summary.failed += 1
                self.rejects.add(row, reason(result.error.text))
            elif result.created:
                self.summary.created += 1
            else:
                self.summary.updated += 1
        self._written += 1
        if self._written & (self._written - 1) == 0:  # 1, 2, 4, 8, ... batches in
            self.store.call(lambda uow: uow.analyze_profile_tables())

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@contextmanager
def _few_collections() -> Iterator[None]:
    """Fewer cyclic GC passes while importing: a batch allocates many small objects that all
    die young, and the default thresholds rescan the survivors far too often."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def reason(text: str) -> str:
    """``data[3].email: not a valid ...`` → ``email: not a valid ...`` (the batch index means
    nothing in a file; the rejects file gives the line)."""
    return re.sub(r"^data\[\d+\]\.?", "", text).lstrip(": ").strip() or text


# -- progress display -------------------------------------------------------------------------


class RowsColumn(ProgressColumn):
    """``12,000 rows  9,870 rows/s``: the rate in rows, while the bar and ETA follow bytes."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = rows / elapsed if elapsed > 0 else 0.0
        return Text(f"{rows:,} rows  {rate:,.0f} rows/s")


@contextmanager
def progress_bar(total_bytes: int, label: str, *, enabled: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr driven by bytes read: yields the ``progress`` callback."""
    if not enabled:
        yield lambda _bytes, _rows: None
        return
    bar = RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        RowsColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task(label, total=max(total_bytes, 1), rows=0)
        yield lambda done, rows: bar.update(task, completed=done, rows=rows)
