"""Count the SQL statements of a ``profiles/import_batch`` that stitches waiting events (issue 11).

Run from the repository root with the venv's python::

    python -m bench.stitch_statements
    python -m bench.stitch_statements --database postgresql://postgres@127.0.0.1:5432/test --json

On a fresh store (a SQLite file in a temporary folder, or a new schema in the PostgreSQL
database the URL names, dropped afterwards), database 1 gets a pixel and a token; then
``--profiles`` goal events for as many unknown emails are registered, each with a user agent and
a public IP, so they are recorded without a profile (policy ``record``) and carry enrichment.
Then those emails are imported in ONE batch, through the pipeline ``profiles/import_batch`` runs
in its unit of work (``bulk.check_items`` and ``bulk.apply_items``), and the statements of that
transaction are counted: every ``Tx.execute`` on both stores (what Goalline sends), and on
SQLite also what the connection's trace callback saw (what SQLite ran). "Single-row field
upserts" are the ``INSERT INTO profile_fields`` statements that carry one row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from bench.server import BenchStore
from goalline.model import iso_utc
from goalline.pipeline import admin, bulk, register, validate
from goalline.pipeline.auth import authorise_database
from goalline.pipeline.context import hash_token
from goalline.pipeline.enrich import enricher
from goalline.pipeline.requests import RegisterRequest
from goalline.settings import Settings
from goalline.storage.store import Store, Tx, open_store

DB_ID = 1
PIXEL_ID = 1
TOKEN = "bench-stitch-statements-token"
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
)
_HEAD = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM|SELECT .*? FROM)\s+(\w+)", re.S)


class Counted:
    """The statements one unit of work ran, as Goalline sent them."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []  # (text, bound values)
        self.traced = 0  # SQLite only: statements the connection's trace callback reported

    @property
    def total(self) -> int:
        return len(self.queries)

    @property
    def single_row_field_upserts(self) -> int:
        return sum(
            1
            for text, values in self.queries
            if text.lstrip().startswith("INSERT INTO profile_fields") and values == 4
        )

    def by_kind(self) -> dict[str, int]:
        kinds: Counter[str] = Counter()
        for text, _ in self.queries:
            head = _HEAD.match(text)
            verb = head[1].split()[0] if head else text.split()[0]
            kinds[f"{verb} {head[2]}" if head else verb] += 1
        return dict(kinds.most_common())


@contextmanager
def counting() -> Iterator[Counted]:
    """Record every ``Tx.execute`` (``one``, ``all``, ``scalar`` and ``insert_ids`` go through
    it) while the block runs."""
    counted = Counted()
    execute = Tx.execute

    def recorded(tx: Tx, query: str, params: Sequence[Any] = ()) -> Any:
        counted.queries.append((query, len(params)))
        return execute(tx, query, params)

    with mock.patch.object(Tx, "execute", recorded):
        yield counted


def emails(count: int) -> list[str]:
    return [f"waiting{i:05d}@example.com" for i in range(count)]


def set_up(store: Store) -> None:
    now = iso_utc(dt.datetime.now(dt.UTC))

    def seed(tx: Tx) -> None:
        admin.create_database(tx, name="Stitch bench", db_id=DB_ID, now=now)  # policy record
        admin.create_pixel(tx, name="Site", db_id=DB_ID, pixel_id=PIXEL_ID, now=now)
        admin.create_token(tx, name="bench", db_ids=(DB_ID,), value=TOKEN, now=now)

    store.call(seed)


def register_waiting(store: Store, addresses: list[str]) -> None:
    """One goal event per address, as goals/register stores it: validated, enriched (user
    agent, GeoIP), then recorded without a profile."""
    settings = Settings()
    when = dt.datetime.now(dt.UTC)
    enrich = enricher(settings.geoip_database)
    regs = []
    for i, email in enumerate(addresses):
        req = RegisterRequest(
            token=TOKEN,
            db_id=DB_ID,
            pixel_id=PIXEL_ID,
            matching="email",
            email=email,
            goal="viewed",
            date=iso_utc(when - dt.timedelta(days=1, seconds=i)),
            user_agent=USER_AGENTS[i % len(USER_AGENTS)],
            client_ip=f"77.88.{i // 250}.{1 + i % 250}",
            accept_language="ru-RU,ru;q=0.9",
        )
        reg = validate.registration(req, now=when, max_future_seconds=settings.max_future_seconds)
        enrich.apply(reg.attrs)
        regs.append(reg)
    received = iso_utc(when)

    def work(tx: Tx) -> None:
        for reg in regs:
            stored = register.store_registration(tx, reg, hash_token(TOKEN), received)
            assert stored.profile_id is None, "the bench's emails must be unknown"

    store.call(work)


def import_batch(store: Store, addresses: list[str]) -> Counted:
    """The unit of work of ``profiles/import_batch`` for ``addresses``, counted."""
    now = iso_utc(dt.datetime.now(dt.UTC))
    items = [{"email": email, "_fname": f"Person {i}"} for i, email in enumerate(addresses)]

    def work(tx: Tx) -> list[bulk.ItemResult]:
        conn = getattr(tx, "_conn", None)  # SQLite: also count what the connection ran
        if tx.dialect.name == "sqlite" and conn is not None:
            conn.set_trace_callback(lambda _: setattr(counted, "traced", counted.traced + 1))
        try:
            authorise_database(tx, hash_token(TOKEN), DB_ID)
            fields = tx.fields_of(DB_ID)
            checked = bulk.check_items(
                items, fields=fields, db_id=DB_ID, matching="email", field_name=None,
                phone_region="",
            )  # fmt: skip
            return bulk.apply_items(tx, db_id=DB_ID, fields=fields, checked=checked, now=now)
        finally:
            if tx.dialect.name == "sqlite" and conn is not None:
                conn.set_trace_callback(None)

    with counting() as counted:
        results = store.call(work)
    failed = [r.reply() for r in results if r.error is not None]
    assert not failed, failed
    return counted


def check_stitched(store: Store, count: int) -> dict[str, int]:
    """The events all found their profiles, and the profiles got the events' enrichment."""

    def read(tx: Tx) -> dict[str, int]:
        return {
            "events_still_waiting": int(
                tx.scalar("SELECT COUNT(*) FROM goal_events WHERE profile_id IS NULL")
            ),
            "profiles": int(tx.scalar("SELECT COUNT(*) FROM profiles")),
            "enrichment_fields": int(
                tx.scalar(
                    "SELECT COUNT(*) FROM profile_fields WHERE name LIKE '\\_%' ESCAPE '\\' "
                    "AND name <> '_fname'"
                )
            ),
        }

    found = store.call(read, write=False)
    assert found["events_still_waiting"] == 0 and found["profiles"] == count, found
    return found


def run(spec: str, count: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="goalline-stitch-") as tmp,
        BenchStore(spec, Path(tmp)) as fresh,
    ):
        store = open_store(fresh.url)
        try:
            store.migrate()
            set_up(store)
            addresses = emails(count)
            register_waiting(store, addresses)
            counted = import_batch(store, addresses)
            stored = check_stitched(store, count)
        finally:
            store.close()
        result: dict[str, Any] = {
            "store": fresh.label,
            "profiles": count,
            "waiting_events": count,
            "statements": counted.total,
            "single_row_field_upserts": counted.single_row_field_upserts,
            "by_kind": counted.by_kind(),
            **stored,
        }
        if fresh.kind == "sqlite":
            result["sqlite_traced_statements"] = counted.traced
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default="", help="a PostgreSQL URL (default: SQLite in a temp dir)"
    )
    parser.add_argument("--profiles", type=int, default=200, help="profiles (and events)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args.database, args.profiles)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(result["store"])
    print(
        f"import of {result['profiles']} profiles, {result['waiting_events']} waiting events: "
        f"{result['statements']} statements, "
        f"{result['single_row_field_upserts']} of them single-row field upserts"
    )
    if "sqlite_traced_statements" in result:
        print(f"  SQLite's trace callback: {result['sqlite_traced_statements']} statements")
    for kind, n in result["by_kind"].items():
        print(f"  {n:6d}  {kind}")
    print(
        f"  after: {result['events_still_waiting']} events waiting, "
        f"{result['enrichment_fields']} enrichment fields on {result['profiles']} profiles"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
