"""Every query, written once against the Tx interface (``?`` placeholders, portable SQL).

Both stores run these same texts; storage/dialect.py only rewrites placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import msgspec

from goalline.model import (
    EVENT_ATTRS,
    Database,
    EventDraft,
    HistoryPage,
    LogEntry,
    LogRow,
    Pixel,
    TokenInfo,
)
from goalline.storage.transaction import Tx

# -- goal events -------------------------------------------------------------------------------

EVENT_COLUMNS: tuple[str, ...] = (
    "db_id",
    "pixel_id",
    "profile_id",
    "matching",
    "match_kind",
    "match_field",
    "match_key",
    "goal",
    "value",
    "event_at",
    "date_raw",
    "received_at",
    "is_test",
    "skip_triggers",
    "enrich_profile",
    "token_id",
    *EVENT_ATTRS,
    "fingerprint",
)
#: Rows per INSERT: keeps the placeholder count under SQLite's 32,766 limit.
_ROWS_PER_INSERT = 200
#: From this many events in one call, PostgreSQL gets them with COPY (Tx.copy_ids) instead of
#: multi-row INSERTs: measured, 13.2 against 16.5 µs of the database's CPU an event row, but
#: two more round trips, which only many rows repay (docs/performance.md, write path item 11).
COPY_MIN_ROWS = 400


_GOAL = EVENT_COLUMNS.index("goal")
_VALUE = EVENT_COLUMNS.index("value")
assert _VALUE == _GOAL + 1


def _present(rows: Sequence[Sequence[Any]]) -> tuple[int, ...]:
    """Positions of the columns that hold a value in at least one of ``rows``.

    Only those are bound; the rest default to NULL. Most of an event's 60 columns are NULL,
    and Python's sqlite3 binds ``None`` through its adapter lookup at about 0.5 µs a value,
    which made a 60-column insert cost 35 µs where the bound values alone take 3 µs.
    """
    columns = zip(*rows, strict=True)
    return tuple(i for i, column in enumerate(columns) if column.count(None) != len(column))


def _picker(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    if len(positions) == 1:
        only = positions[0]
        return lambda row: (row[only],)
    return itemgetter(*positions) if positions else lambda row: ()


@lru_cache(maxsize=512)
def _insert_sql(present: tuple[int, ...], rows: int, suffix: str) -> str:
    names = ", ".join(EVENT_COLUMNS[i] for i in present)
    marks = "(" + ", ".join("?" * len(present)) + ")"
    return f"INSERT INTO goal_events ({names}) VALUES " + ", ".join([marks] * rows) + suffix


def _template(draft: EventDraft) -> tuple[Any, ...]:
    """The EVENT_COLUMNS values ``draft``'s events share; goal, value and fingerprint None."""
    reg = draft.reg
    key = reg.match
    attrs = reg.attrs  # EVENT_ATTRS, in that order (pipeline/validate.py builds it so)
    tail: tuple[Any, ...] = tuple(attrs.values())
    if attrs["sources"]:  # a dict while the pipeline reads it; JSON text in the row
        tail = (*tail[:-1], msgspec.json.encode(attrs["sources"]).decode())
    return (
        reg.db_id, reg.pixel_id, draft.profile_id, reg.matching, key.kind, key.field,
        draft.key_text, None, None, reg.event_at, reg.date_raw, draft.received_at, reg.is_test,
        reg.skip_triggers, reg.enrich_profile, draft.token_id, *tail, None,
    )  # fmt: skip


def _event_row(
    template: Sequence[Any], goal: str | None, value: float | None, fingerprint: str | None
) -> tuple[Any, ...]:
    """A whole EVENT_COLUMNS row: a template with one goal filled in."""
    return (*template[:_GOAL], goal, value, *template[_VALUE + 1 : -1], fingerprint)


_KEY_AT = tuple(
    EVENT_COLUMNS.index(name) for name in ("db_id", "external_type", "external_event_id", "goal")
)


# -- profiles at scale: batch import, stitching, history (issue 4) -----------------------------

#: Keys per ``IN (...)`` list, and bound values per multi-row INSERT: far under SQLite's 32,766
#: and PostgreSQL's 65,535 placeholders, large enough that a 10,000-item batch is a few queries.
_IN_CHUNK = 900
_VALUES_PER_INSERT = 4000


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: What stitching reads of a waiting event: its key, and enough to replay its profile
#: enrichment.
_WAITING_COLUMNS = (
    "id", "match_key", "event_at", "enrich_profile", "vendor", "browser", "os", "device",
    "client_ip", "client_ip_v4", "client_ip_v6", "country", "region", "city", "zip", "time_zone",
    "lat", "lon", "language",
)  # fmt: skip


#: What subscribers/history_get shows of an event.
HISTORY_COLUMNS: tuple[str, ...] = (
    "id", "db_id", "pixel_id", "profile_id", "goal", "value", "event_at", "is_test",
    "send_message_id", "external_type", "external_event_id", "referer", "utm_source",
    "utm_medium", "utm_campaign", "utm_content", "utm_term", "pixel_data",
)  # fmt: skip


#: The tables a profile import grows (the importer analyzes them as it goes).
PROFILE_TABLES = ("profiles", "profile_keys", "profile_fields")
#: The tables whose planner statistics Goalline keeps fresh itself (see stale_tables).
ANALYZED_TABLES = (*PROFILE_TABLES, "goal_events", "request_log")


class Queries(Tx):
    """The open transaction with every query of Goalline as a method: the storage port's
    implementation (storage/ports.py UnitOfWork). The pipeline calls these by name and never
    sees SQL; the raw ``execute``/``one``/``all`` stay for storage's own use and for tests."""

    __slots__ = ()

    def ping(self) -> None:
        """One round trip that reads nothing (readiness checks)."""
        self.scalar("SELECT 1")

    # -- admin objects ----------------------------------------------------------------------------

    def next_id(self, table: str) -> int:
        # Admin objects are rare; MAX+1 keeps ids identical on both stores (no sequences), and the
        # primary key turns a concurrent duplicate into an error rather than a silent clash.
        return int(self.scalar(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"))

    def _numbered(
        self, table: str, given: int | None, columns: str, values: tuple[Any, ...]
    ) -> int:
        """Insert an admin row (database, pixel) under ``given`` or the next free id."""
        new_id = given or self.next_id(table)
        marks = ", ".join("?" * (len(values) + 1))
        self.execute(f"INSERT INTO {table} (id, {columns}) VALUES ({marks})", (new_id, *values))
        return new_id

    def create_database(self, *, name: str, policy: str, db_id: int | None, now: str) -> int:
        values = (name, policy, now)
        return self._numbered("databases", db_id, "name, unknown_profile, created_at", values)

    def get_database(self, db_id: int) -> Database | None:
        row = self.one("SELECT id, name, unknown_profile FROM databases WHERE id = ?", (db_id,))
        return None if row is None else Database(int(row[0]), row[1], row[2])

    def list_databases(self) -> list[Database]:
        rows = self.all("SELECT id, name, unknown_profile FROM databases ORDER BY id")
        return [Database(int(r[0]), r[1], r[2]) for r in rows]

    def set_policy(self, db_id: int, policy: str) -> None:
        self.execute("UPDATE databases SET unknown_profile = ? WHERE id = ?", (policy, db_id))

    def add_field(self, *, db_id: int, name: str, type_: str, now: str) -> None:
        self.execute(
            "INSERT INTO fields (db_id, name, type, created_at) VALUES (?, ?, ?, ?)",
            (db_id, name, type_, now),
        )

    def fields_of(self, db_id: int) -> dict[str, str]:
        rows = self.all("SELECT name, type FROM fields WHERE db_id = ? ORDER BY name", (db_id,))
        return {name: type_ for name, type_ in rows}

    def create_pixel(self, *, name: str, db_id: int | None, pixel_id: int | None, now: str) -> int:
        return self._numbered("pixels", pixel_id, "name, db_id, created_at", (name, db_id, now))

    def get_pixel(self, pixel_id: int) -> Pixel | None:
        row = self.one("SELECT id, name, db_id FROM pixels WHERE id = ?", (pixel_id,))
        if row is None:
            return None
        return Pixel(int(row[0]), row[1], None if row[2] is None else int(row[2]))

    def create_token(self, *, name: str, token_hash: str, db_ids: Sequence[int], now: str) -> int:
        token_id = self.next_id("tokens")
        self.execute(
            "INSERT INTO tokens (id, name, hash, all_databases, created_at) VALUES (?, ?, ?, ?, ?)",
            (token_id, name, token_hash, not db_ids, now),
        )
        for db_id in db_ids:
            self.execute(
                "INSERT INTO token_databases (token_id, db_id) VALUES (?, ?)", (token_id, db_id)
            )
        return token_id

    def token_by_hash(self, token_hash: str) -> TokenInfo | None:
        row = self.one("SELECT id, name, all_databases FROM tokens WHERE hash = ?", (token_hash,))
        if row is None:
            return None
        db_ids = self.all("SELECT db_id FROM token_databases WHERE token_id = ?", (row[0],))
        return TokenInfo(int(row[0]), row[1], bool(row[2]), frozenset(int(r[0]) for r in db_ids))

    def token_exists(self, token_hash: str) -> bool:
        return self.one("SELECT 1 FROM tokens WHERE hash = ?", (token_hash,)) is not None

    # -- profiles ----------------------------------------------------------------------------------

    def find_profiles(self, db_id: int, name: str, keys: Sequence[str]) -> list[str]:
        """Profiles of ``db_id`` holding every key in ``keys`` under field ``name`` (oldest
        first)."""
        if len(keys) == 1:
            rows = self.all(
                "SELECT profile_id FROM profile_keys WHERE db_id = ? AND name = ? AND key = ? "
                "ORDER BY profile_id LIMIT 3",
                (db_id, name, keys[0]),
            )
        else:
            marks = ", ".join("?" * len(keys))
            rows = self.all(
                "SELECT profile_id FROM profile_keys WHERE db_id = ? AND name = ? "
                f"AND key IN ({marks}) GROUP BY profile_id HAVING COUNT(DISTINCT key) = ? "
                "ORDER BY profile_id LIMIT 3",
                (db_id, name, *keys, len(set(keys))),
            )
        return [r[0] for r in rows]

    def create_profile(self, *, db_id: int, profile_id: str, now: str) -> None:
        self.execute(
            "INSERT INTO profiles (id, db_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (profile_id, db_id, now, now),
        )

    def touch_profile(self, profile_id: str, now: str) -> None:
        self.execute("UPDATE profiles SET updated_at = ? WHERE id = ?", (now, profile_id))

    def profile_meta(self, db_id: int, profile_id: str) -> tuple[str, str] | None:
        row = self.one(
            "SELECT created_at, updated_at FROM profiles WHERE id = ? AND db_id = ?",
            (profile_id, db_id),
        )
        return None if row is None else (row[0], row[1])

    def add_keys(self, db_id: int, profile_id: str, name: str, keys: Iterable[str]) -> bool:
        """Index ``keys``; False when a unique key (email, phone) already belongs to another
        profile."""
        for key in keys:
            cursor = self.execute(
                "INSERT INTO profile_keys (db_id, name, key, profile_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (db_id, name, key, profile_id),
            )
            if (
                cursor.rowcount == 0
                and self.one(
                    "SELECT 1 FROM profile_keys WHERE db_id = ? AND name = ? AND key = ? "
                    "AND profile_id = ?",
                    (db_id, name, key, profile_id),
                )
                is None
            ):
                return False
        return True

    def key_owner(self, db_id: int, name: str, key: str) -> str | None:
        owner: str | None = self.scalar(
            "SELECT profile_id FROM profile_keys WHERE db_id = ? AND name = ? AND key = ? LIMIT 1",
            (db_id, name, key),
        )
        return owner

    def drop_keys(self, profile_id: str, name: str) -> None:
        self.execute(
            "DELETE FROM profile_keys WHERE profile_id = ? AND name = ?", (profile_id, name)
        )

    def profile_fields(self, profile_id: str) -> dict[str, Any]:
        rows = self.all(
            "SELECT name, value FROM profile_fields WHERE profile_id = ? ORDER BY name",
            (profile_id,),
        )
        return {name: msgspec.json.decode(value) for name, value in rows}

    def request_log_rows(self, keys: Sequence[str]) -> dict[str, LogRow]:
        """The request-log rows of ``keys`` that exist, read with one query per 500 keys."""
        found: dict[str, LogRow] = {}
        for chunk in _chunks(keys, 500):
            rows = self.all(
                "SELECT key, reply, reply_format, expires_at FROM request_log "
                f"WHERE key IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for key, reply, reply_format, expires_at in rows:
                found[key] = LogRow(reply, reply_format, expires_at)
        return found

    def log_requests(self, entries: Sequence[LogEntry]) -> bool:
        """Insert log entries, one statement per 200; False when another transaction holds one
        of the keys (nothing of that chunk is then written)."""
        for chunk in _chunks(entries, 200):
            inserted = self.execute(
                "INSERT INTO request_log "
                "(key, method, created_at, expires_at, reply_format, reply) "
                "VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT DO NOTHING",
                [
                    value
                    for e in chunk
                    for value in (
                        e.key,
                        e.method,
                        e.created_at,
                        e.expires_at,
                        e.reply_format,
                        e.reply,
                    )
                ],
            )
            if inserted.rowcount != len(chunk):
                return False
        return True

    def replace_logged_request(self, entry: LogEntry) -> bool:
        """Write ``entry`` over its key's entry if that one has expired by ``entry.created_at``;
        False when it has not (another transaction took the key over first) or is gone."""
        cursor = self.execute(
            "UPDATE request_log SET method = ?, created_at = ?, expires_at = ?, "
            "reply_format = ?, reply = ? WHERE key = ? AND expires_at <= ?",
            (
                entry.method,
                entry.created_at,
                entry.expires_at,
                entry.reply_format,
                entry.reply,
                entry.key,
                entry.created_at,
            ),
        )
        return int(cursor.rowcount) == 1

    def forget_requests_before(self, now: str, batch: int) -> int:
        """Delete up to ``batch`` entries that expired by ``now``; return how many."""
        cursor = self.execute(
            "DELETE FROM request_log WHERE key IN "
            "(SELECT key FROM request_log WHERE expires_at <= ? LIMIT ?)",
            (now, batch),
        )
        return max(int(cursor.rowcount), 0)

    def insert_events(self, drafts: Sequence[EventDraft]) -> list[list[int]]:
        """Insert the events of ``drafts`` with as few statements as the placeholder limit allows;
        return each draft's event ids, in goal order.

        The columns bound are those that some event fills in (see _present); each event's row is
        its draft's shared values with its own goal and value in place, built without copying the
        60-column template once per goal.
        """
        if not drafts:
            return []
        groups = [(_template(draft), draft.reg.goals) for draft in drafts]
        present = set(_present([template for template, _ in groups]))
        present.discard(_GOAL)
        present.discard(_VALUE)
        if any(goal is not None for _, goals in groups for goal, _ in goals):
            present.add(_GOAL)
        if any(value is not None for _, goals in groups for _, value in goals):
            present.add(_VALUE)
        columns = tuple(sorted(present))
        head = _picker([i for i in columns if i < _GOAL])
        tail = _picker([i for i in columns if i > _VALUE])
        with_goal, with_value = _GOAL in present, _VALUE in present
        params: list[Any] = []  # every row's values, one after another
        for template, goals in groups:
            before, after = head(template), tail(template)
            for goal, value in goals:
                params += before
                if with_goal:
                    params.append(goal)
                if with_value:
                    params.append(value)
                params += after
        width = len(columns)
        total = len(params) // width
        ids: list[int] = []
        if self.dialect.name == "postgres" and total >= COPY_MIN_ROWS:
            ids = self.copy_ids("goal_events", [EVENT_COLUMNS[i] for i in columns], params, total)
        else:
            for start in range(0, total, _ROWS_PER_INSERT):
                rows = min(_ROWS_PER_INSERT, total - start)
                query = _insert_sql(columns, rows, "")
                ids += self.insert_ids(query, params[start * width : (start + rows) * width], rows)
        out: list[list[int]] = []
        start = 0
        for _, goals in groups:
            out.append(ids[start : start + len(goals)])
            start += len(goals)
        return out

    def insert_events_once(
        self, drafts: Sequence[EventDraft]
    ) -> list[list[tuple[int, str | None]]]:
        """Insert the events of drafts that carry an external id (and a fingerprint per goal),
        each unless its (database, external_type, external_event_id, goal) key is taken; one
        statement per 200 events. Per draft, per goal: (the new event's id, None), or, where a
        stored event or an earlier goal of ``drafts`` holds the key, (that event's id, its
        fingerprint). On PostgreSQL a concurrent insert of the same key waits for the other
        transaction first.
        """
        rows: list[tuple[Any, ...]] = []
        for draft in drafts:
            template = _template(draft)
            assert draft.fingerprints is not None
            rows.extend(
                _event_row(template, goal, value, fingerprint)
                for (goal, value), fingerprint in zip(
                    draft.reg.goals, draft.fingerprints, strict=True
                )
            )
        flat = self._insert_once(rows)
        out: list[list[tuple[int, str | None]]] = []
        start = 0
        for draft in drafts:
            out.append(flat[start : start + len(draft.reg.goals)])
            start += len(draft.reg.goals)
        return out

    def _insert_once(self, rows: Sequence[Sequence[Any]]) -> list[tuple[int, str | None]]:
        out: list[tuple[int, str | None]] = []
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            present = _present(chunk)
            query = _insert_sql(
                present, len(chunk),
                " ON CONFLICT DO NOTHING "
                "RETURNING id, db_id, external_type, external_event_id, goal",
            )  # fmt: skip
            pick = _picker(present)
            inserted = {
                (db_id, kind or "", event_id, goal or ""): new_id
                for new_id, db_id, kind, event_id, goal in self.all(
                    query, list(chain.from_iterable(map(pick, chunk)))
                )
            }
            for row in chunk:
                db_id, kind, event_id, goal = (row[i] for i in _KEY_AT)
                new_id = inserted.pop((db_id, kind or "", event_id, goal or ""), None)
                out.append((int(new_id), None) if new_id is not None else self._stored_event(row))
        return out

    def _stored_event(self, row: Sequence[Any]) -> tuple[int, str]:
        db_id, kind, event_id, goal = (row[i] for i in _KEY_AT)
        stored = self.one(
            "SELECT id, fingerprint FROM goal_events WHERE db_id = ? "
            "AND COALESCE(external_type, '') = ? AND external_event_id = ? "
            "AND COALESCE(goal, '') = ?",
            (db_id, kind or "", event_id, goal or ""),
        )
        assert stored is not None, "conflict without a stored event"
        return int(stored[0]), str(stored[1])

    def events(self, where: str = "1 = 1", params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Stored events as dicts, oldest first: for tests and tooling (not part of the port:
        units of work never pass SQL)."""
        columns = ("id", *EVENT_COLUMNS)
        rows = self.all(
            f"SELECT {', '.join(columns)} FROM goal_events WHERE {where} ORDER BY id", params
        )
        out = []
        for row in rows:
            event = dict(zip(columns, row, strict=True))
            for name in ("is_test", "skip_triggers", "enrich_profile"):
                event[name] = bool(event[name])
            for name in ("categories", "pixel_data", "sources"):
                if event[name] is not None:
                    event[name] = self.dialect.json_value(event[name])
            out.append(event)
        return out

    def _insert_many(self, head: str, tail: str, rows: Sequence[Sequence[Any]]) -> int:
        """``head VALUES (..), (..) tail`` over ``rows`` in chunks; return the rows affected."""
        if not rows:
            return 0
        width = len(rows[0])
        marks = "(" + ", ".join("?" * width) + ")"
        count = 0
        for chunk in _chunks(rows, max(1, _VALUES_PER_INSERT // width)):
            query = f"{head} VALUES {', '.join([marks] * len(chunk))}{tail}"
            cursor = self.execute(query, [value for row in chunk for value in row])
            count += max(cursor.rowcount, 0)
        return count

    def key_owners(self, db_id: int, name: str, keys: Sequence[str]) -> list[tuple[str, str]]:
        """(key, profile_id) for every profile of ``db_id`` holding one of ``keys`` under
        ``name``."""
        out: list[tuple[str, str]] = []
        for chunk in _chunks(sorted(set(keys)), _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            rows = self.all(
                "SELECT key, profile_id FROM profile_keys WHERE db_id = ? AND name = ? "
                f"AND key IN ({marks})",
                (db_id, name, *chunk),
            )
            out.extend((r[0], r[1]) for r in rows)
        return out

    def profiles_in_database_of(self, db_id: int, profile_ids: Sequence[str]) -> set[str]:
        """Which of ``profile_ids`` are profiles of ``db_id``."""
        found: set[str] = set()
        for chunk in _chunks(sorted(set(profile_ids)), _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            rows = self.all(
                f"SELECT id FROM profiles WHERE db_id = ? AND id IN ({marks})", (db_id, *chunk)
            )
            found.update(r[0] for r in rows)
        return found

    def insert_profiles(self, db_id: int, profile_ids: Sequence[str], now: str) -> None:
        self._insert_many(
            "INSERT INTO profiles (id, db_id, created_at, updated_at)",
            "",
            [(profile_id, db_id, now, now) for profile_id in profile_ids],
        )

    def touch_profiles(self, profile_ids: Sequence[str], now: str) -> None:
        for chunk in _chunks(list(profile_ids), _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            self.execute(f"UPDATE profiles SET updated_at = ? WHERE id IN ({marks})", (now, *chunk))

    def drop_keys_of(self, name: str, profile_ids: Sequence[str]) -> None:
        """Forget every key the profiles hold under ``name`` (before re-indexing it)."""
        for chunk in _chunks(list(profile_ids), _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            self.execute(
                f"DELETE FROM profile_keys WHERE profile_id IN ({marks}) AND name = ?",
                (*chunk, name),
            )

    def insert_keys(self, rows: Sequence[tuple[int, str, str, str]]) -> int:
        """Index (db_id, name, key, profile_id) rows; return how many were new (a unique email or
        phone taken meanwhile by another profile is skipped, and shows in the count)."""
        return self._insert_many(
            "INSERT INTO profile_keys (db_id, name, key, profile_id)",
            " ON CONFLICT DO NOTHING",
            rows,
        )

    def write_fields_newer(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Set (profile_id, name, value as JSON text, written_at) fields unless the stored value
        is newer. A field given twice keeps its newest value (the later one on a tie), as writing
        the rows one by one would; one statement per chunk, as an upsert may touch a row once.
        Rows go in key order: concurrent PostgreSQL writers then lock shared rows in the same order
        and cannot deadlock on them."""
        newest: dict[tuple[str, str], tuple[str, str, str, str]] = {}
        for row in rows:
            kept = newest.get((row[0], row[1]))
            if kept is None or row[3] >= kept[3]:
                newest[(row[0], row[1])] = row
        self._insert_many(
            "INSERT INTO profile_fields (profile_id, name, value, written_at)",
            " ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, "
            "written_at = excluded.written_at "
            "WHERE profile_fields.written_at <= excluded.written_at",
            [newest[key] for key in sorted(newest)],
        )

    def write_fields(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Set (profile_id, name, value as JSON text, written_at) fields, whatever their stored
        times (an import's data is the newest); at most one row per (profile_id, name)."""
        self._insert_many(
            "INSERT INTO profile_fields (profile_id, name, value, written_at)",
            " ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, "
            "written_at = excluded.written_at",
            rows,
        )

    def any_waiting(self, db_id: int) -> bool:
        """Whether any event of ``db_id`` waits for a profile (index-only on both stores)."""
        return (
            self.one(
                "SELECT 1 FROM goal_events WHERE db_id = ? AND profile_id IS NULL LIMIT 1", (db_id,)
            )
            is not None
        )

    def waiting_events(
        self, *, db_id: int, kind: str, field: str | None, keys: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Events of ``db_id`` recorded without a profile under one of ``keys``, oldest first."""
        out: list[dict[str, Any]] = []
        for chunk in _chunks(sorted(set(keys)), _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            rows = self.all(
                f"SELECT {', '.join(_WAITING_COLUMNS)} FROM goal_events WHERE db_id = ? "
                "AND profile_id IS NULL AND match_kind = ? AND match_field = ? "
                f"AND match_key IN ({marks})",
                (db_id, kind, field, *chunk),
            )
            out.extend(dict(zip(_WAITING_COLUMNS, row, strict=True)) for row in rows)
        for event in out:
            event["enrich_profile"] = bool(event["enrich_profile"])
        out.sort(key=lambda e: (e["event_at"], e["id"]))
        return out

    def set_events_profile(self, rows: Sequence[tuple[int, str]]) -> None:
        """Give each (event id, profile id) of ``rows`` its profile: one UPDATE per 900 events,
        whatever the number of profiles (the chunks go in event id order)."""
        for chunk in _chunks(sorted(rows), _IN_CHUNK):
            marks = ", ".join(["(?, ?)"] * len(chunk))
            self.execute(
                "UPDATE goal_events SET profile_id = v.column2 "
                f"FROM (VALUES {marks}) AS v WHERE goal_events.id = v.column1",
                [value for row in chunk for value in row],
            )

    def history_events(self, page: HistoryPage) -> list[dict[str, Any]]:
        """A profile's events, newest first: ``since <= event_at < until``, and older than
        ``before`` = (event_at, id) in that order when paging."""
        since, until, before = page.since, page.until, page.before
        where = ["db_id = ?", "profile_id = ?"]
        params: list[Any] = [page.db_id, page.profile_id]
        if since is not None:
            where.append("event_at >= ?")
            params.append(since)
        if until is not None:
            where.append("event_at < ?")
            params.append(until)
        if before is not None:
            where.append("(event_at < ? OR (event_at = ? AND id < ?))")
            params.extend((before[0], before[0], before[1]))
        rows = self.all(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM goal_events WHERE {' AND '.join(where)} "
            "ORDER BY event_at DESC, id DESC LIMIT ?",
            (*params, page.limit),
        )
        out = []
        for row in rows:
            event = dict(zip(HISTORY_COLUMNS, row, strict=True))
            event["is_test"] = bool(event["is_test"])
            if event["pixel_data"] is not None:
                event["pixel_data"] = self.dialect.json_value(event["pixel_data"])
            out.append(event)
        return out

    def event_time(self, db_id: int, profile_id: str, event_id: int) -> str | None:
        """The event_at of one of a profile's events (a history cursor's position)."""
        value = self.scalar(
            "SELECT event_at FROM goal_events WHERE id = ? AND db_id = ? AND profile_id = ?",
            (event_id, db_id, profile_id),
        )
        return None if value is None else str(value)

    def keys_of_profiles(self, profile_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(profile_id, name, key) of every key the profiles hold."""
        out: list[tuple[str, str, str]] = []
        for chunk in _chunks(list(profile_ids), _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            rows = self.all(
                f"SELECT profile_id, name, key FROM profile_keys WHERE profile_id IN ({marks})",
                chunk,
            )
            out.extend((r[0], r[1], r[2]) for r in rows)
        return out

    def stale_tables(self) -> list[str]:
        """PostgreSQL tables of ANALYZED_TABLES whose statistics autovacuum would refresh now: more
        than 50 rows + 10% of the table changed since the last ANALYZE, or since its creation for
        a table never analyzed (autovacuum's defaults). With autovacuum off (or behind a bulk load)
        a table keeps the statistics of an empty table, and the planner then reads a whole
        database's profile keys for each lookup (measured on 10,000 profiles: 1.6 ms alone, 3-4 ms
        under load, against 0.04 ms once analyzed). SQLite plans by its indexes: always []."""
        if self.dialect.name != "postgres":
            return []
        rows = self.all(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
            "AND relname IN (" + ", ".join("?" * len(ANALYZED_TABLES)) + ") "
            "AND n_mod_since_analyze > 50 + 0.1 * n_live_tup",
            ANALYZED_TABLES,
        )
        return sorted(r[0] for r in rows)

    def autovacuum_off(self) -> bool:
        """Whether PostgreSQL's autovacuum is turned off (always False on SQLite)."""
        return self.dialect.name == "postgres" and self.scalar("SHOW autovacuum") == "off"

    def analyze_profile_tables(self) -> None:
        """ANALYZE the profile tables (a bulk import changes their statistics the most)."""
        self.analyze(PROFILE_TABLES)

    def analyze(self, tables: Sequence[str]) -> None:
        """ANALYZE ``tables`` (names from ANALYZED_TABLES only) on PostgreSQL; nothing on SQLite,
        which plans by its indexes without statistics."""
        unknown = set(tables) - set(ANALYZED_TABLES)
        if unknown:
            raise ValueError(f"not a Goalline table: {sorted(unknown)}")
        if tables and self.dialect.name == "postgres":
            self.execute("ANALYZE " + ", ".join(tables))

    # -- retention: goalline prune (pipeline/admin.py prune) -------------------------------------

    def count_events_before(self, before: str, db_id: int | None) -> int:
        """How many goal events happened (``event_at``) before ``before``, of ``db_id`` or of
        every database."""
        where, params = _happened_before(before, db_id)
        return int(self.scalar(f"SELECT COUNT(*) FROM goal_events WHERE {where}", params))

    def delete_events_before(
        self, before: str, db_id: int | None, *, after_id: int, limit: int
    ) -> tuple[int, int | None]:
        """Delete the first ``limit`` goal events, in id order after ``after_id``, that happened
        before ``before`` (of ``db_id`` or of every database); return how many and the last id
        looked at (None: no such event is left). Each call starts where the previous one
        stopped, along the primary key, so pruning reads the table once whatever the number of
        calls (``event_at`` has no index of its own)."""
        where, params = _happened_before(before, db_id)
        last = self.scalar(
            "SELECT MAX(id) FROM (SELECT id FROM goal_events "
            f"WHERE id > ? AND {where} ORDER BY id LIMIT ?) AS first_ids",
            (after_id, *params, limit),
        )
        if last is None:
            return 0, None
        cursor = self.execute(
            f"DELETE FROM goal_events WHERE id > ? AND id <= ? AND {where}",
            (after_id, last, *params),
        )
        return max(int(cursor.rowcount), 0), int(last)

    def count_requests_expired(self, now: str) -> int:
        """How many request-log entries expired by ``now`` (forget_requests_before deletes
        them)."""
        return int(self.scalar("SELECT COUNT(*) FROM request_log WHERE expires_at <= ?", (now,)))


def _happened_before(before: str, db_id: int | None) -> tuple[str, tuple[Any, ...]]:
    if db_id is None:
        return "event_at < ?", (before,)
    return "event_at < ? AND db_id = ?", (before, db_id)
