"""Every query, written once against the Tx interface (``?`` placeholders, portable SQL).

Both stores run these same texts; storage/dialect.py only rewrites placeholders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from goalline.model import EVENT_ATTRS, TokenInfo
from goalline.storage.store import Tx

# -- admin objects ----------------------------------------------------------------------------


def next_id(tx: Tx, table: str) -> int:
    # Admin objects are rare; MAX+1 keeps ids identical on both stores (no sequences), and the
    # primary key turns a concurrent duplicate into an error rather than a silent clash.
    return int(tx.scalar(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"))


def create_database(tx: Tx, *, name: str, policy: str, db_id: int | None, now: str) -> int:
    db_id = db_id or next_id(tx, "databases")
    tx.execute(
        "INSERT INTO databases (id, name, unknown_profile, created_at) VALUES (?, ?, ?, ?)",
        (db_id, name, policy, now),
    )
    return db_id


def get_database(tx: Tx, db_id: int) -> tuple[int, str, str] | None:
    row = tx.one("SELECT id, name, unknown_profile FROM databases WHERE id = ?", (db_id,))
    return None if row is None else (int(row[0]), row[1], row[2])


def list_databases(tx: Tx) -> list[tuple[int, str, str]]:
    rows = tx.all("SELECT id, name, unknown_profile FROM databases ORDER BY id")
    return [(int(r[0]), r[1], r[2]) for r in rows]


def set_policy(tx: Tx, db_id: int, policy: str) -> None:
    tx.execute("UPDATE databases SET unknown_profile = ? WHERE id = ?", (policy, db_id))


def add_field(tx: Tx, *, db_id: int, name: str, type_: str, now: str) -> None:
    tx.execute(
        "INSERT INTO fields (db_id, name, type, created_at) VALUES (?, ?, ?, ?)",
        (db_id, name, type_, now),
    )


def fields_of(tx: Tx, db_id: int) -> dict[str, str]:
    rows = tx.all("SELECT name, type FROM fields WHERE db_id = ? ORDER BY name", (db_id,))
    return {name: type_ for name, type_ in rows}


def create_pixel(tx: Tx, *, name: str, db_id: int | None, pixel_id: int | None, now: str) -> int:
    pixel_id = pixel_id or next_id(tx, "pixels")
    tx.execute(
        "INSERT INTO pixels (id, name, db_id, created_at) VALUES (?, ?, ?, ?)",
        (pixel_id, name, db_id, now),
    )
    return pixel_id


def get_pixel(tx: Tx, pixel_id: int) -> tuple[int, str, int | None] | None:
    row = tx.one("SELECT id, name, db_id FROM pixels WHERE id = ?", (pixel_id,))
    return None if row is None else (int(row[0]), row[1], None if row[2] is None else int(row[2]))


def create_token(tx: Tx, *, name: str, token_hash: str, db_ids: Sequence[int], now: str) -> int:
    token_id = next_id(tx, "tokens")
    tx.execute(
        "INSERT INTO tokens (id, name, hash, all_databases, created_at) VALUES (?, ?, ?, ?, ?)",
        (token_id, name, token_hash, not db_ids, now),
    )
    for db_id in db_ids:
        tx.execute("INSERT INTO token_databases (token_id, db_id) VALUES (?, ?)", (token_id, db_id))
    return token_id


def token_by_hash(tx: Tx, token_hash: str) -> TokenInfo | None:
    row = tx.one("SELECT id, name, all_databases FROM tokens WHERE hash = ?", (token_hash,))
    if row is None:
        return None
    db_ids = tx.all("SELECT db_id FROM token_databases WHERE token_id = ?", (row[0],))
    return TokenInfo(int(row[0]), row[1], bool(row[2]), frozenset(int(r[0]) for r in db_ids))


def token_exists(tx: Tx, token_hash: str) -> bool:
    return tx.one("SELECT 1 FROM tokens WHERE hash = ?", (token_hash,)) is not None


# -- profiles ----------------------------------------------------------------------------------


def find_profiles(tx: Tx, db_id: int, name: str, keys: Sequence[str]) -> list[str]:
    """Profiles of ``db_id`` holding every key in ``keys`` under field ``name`` (oldest first)."""
    if len(keys) == 1:
        rows = tx.all(
            "SELECT profile_id FROM profile_keys WHERE db_id = ? AND name = ? AND key = ? "
            "ORDER BY profile_id LIMIT 3",
            (db_id, name, keys[0]),
        )
    else:
        marks = ", ".join("?" * len(keys))
        rows = tx.all(
            "SELECT profile_id FROM profile_keys WHERE db_id = ? AND name = ? "
            f"AND key IN ({marks}) GROUP BY profile_id HAVING COUNT(DISTINCT key) = ? "
            "ORDER BY profile_id LIMIT 3",
            (db_id, name, *keys, len(set(keys))),
        )
    return [r[0] for r in rows]


def profile_in_database(tx: Tx, db_id: int, profile_id: str) -> bool:
    return (
        tx.one("SELECT 1 FROM profiles WHERE id = ? AND db_id = ?", (profile_id, db_id)) is not None
    )


def create_profile(tx: Tx, *, db_id: int, profile_id: str, now: str) -> None:
    tx.execute(
        "INSERT INTO profiles (id, db_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (profile_id, db_id, now, now),
    )


def touch_profile(tx: Tx, profile_id: str, now: str) -> None:
    tx.execute("UPDATE profiles SET updated_at = ? WHERE id = ?", (now, profile_id))


def profile_meta(tx: Tx, db_id: int, profile_id: str) -> tuple[str, str] | None:
    row = tx.one(
        "SELECT created_at, updated_at FROM profiles WHERE id = ? AND db_id = ?",
        (profile_id, db_id),
    )
    return None if row is None else (row[0], row[1])


def add_keys(tx: Tx, db_id: int, profile_id: str, name: str, keys: Iterable[str]) -> bool:
    """Index ``keys``; False when a unique key (email, phone) already belongs to another profile."""
    for key in keys:
        cursor = tx.execute(
            "INSERT INTO profile_keys (db_id, name, key, profile_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (db_id, name, key, profile_id),
        )
        if (
            cursor.rowcount == 0
            and tx.one(
                "SELECT 1 FROM profile_keys WHERE db_id = ? AND name = ? AND key = ? "
                "AND profile_id = ?",
                (db_id, name, key, profile_id),
            )
            is None
        ):
            return False
    return True


def key_owner(tx: Tx, db_id: int, name: str, key: str) -> str | None:
    return tx.scalar(
        "SELECT profile_id FROM profile_keys WHERE db_id = ? AND name = ? AND key = ? LIMIT 1",
        (db_id, name, key),
    )


def drop_keys(tx: Tx, profile_id: str, name: str) -> None:
    tx.execute("DELETE FROM profile_keys WHERE profile_id = ? AND name = ?", (profile_id, name))


def write_field(
    tx: Tx, profile_id: str, name: str, value: Any, written_at: str, *, newer_only: bool
) -> None:
    """Set one profile field; with ``newer_only`` an older ``written_at`` never wins."""
    text = msgspec.json.encode(value).decode()
    guard = " WHERE profile_fields.written_at <= excluded.written_at" if newer_only else ""
    tx.execute(
        "INSERT INTO profile_fields (profile_id, name, value, written_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, "
        "written_at = excluded.written_at" + guard,
        (profile_id, name, text, written_at),
    )


def profile_fields(tx: Tx, profile_id: str) -> dict[str, Any]:
    rows = tx.all(
        "SELECT name, value FROM profile_fields WHERE profile_id = ? ORDER BY name", (profile_id,)
    )
    return {name: msgspec.json.decode(value) for name, value in rows}


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
_ROW_MARKS = "(" + ", ".join("?" * len(EVENT_COLUMNS)) + ")"
#: Rows per INSERT: keeps the placeholder count under SQLite's 32,766 limit.
_ROWS_PER_INSERT = 200


def insert_events(tx: Tx, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert goal event rows (values in EVENT_COLUMNS order); return their ids in order."""
    ids: list[int] = []
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        query = (
            f"INSERT INTO goal_events ({', '.join(EVENT_COLUMNS)}) VALUES "
            + ", ".join([_ROW_MARKS] * len(chunk))
            + " RETURNING id"
        )
        params = [value for row in chunk for value in row]
        ids.extend(sorted(int(r[0]) for r in tx.all(query, params)))
    return ids


def insert_event_once(tx: Tx, row: Sequence[Any]) -> tuple[int, str | None]:
    """Insert one event carrying an external id unless its key is taken.

    Returns (id, None) when inserted, else (the stored event's id, its fingerprint). On
    PostgreSQL a concurrent insert of the same key waits for the other transaction first.
    """
    inserted = tx.one(
        f"INSERT INTO goal_events ({', '.join(EVENT_COLUMNS)}) VALUES {_ROW_MARKS} "
        "ON CONFLICT DO NOTHING RETURNING id",
        row,
    )
    if inserted is not None:
        return int(inserted[0]), None
    values = dict(zip(EVENT_COLUMNS, row, strict=True))
    stored = tx.one(
        "SELECT id, fingerprint FROM goal_events WHERE db_id = ? "
        "AND COALESCE(external_type, '') = ? AND external_event_id = ? "
        "AND COALESCE(goal, '') = ?",
        (values["db_id"], values["external_type"] or "", values["external_event_id"],
         values["goal"] or ""),
    )  # fmt: skip
    assert stored is not None, "conflict without a stored event"
    return int(stored[0]), str(stored[1])


def events(tx: Tx, where: str = "1 = 1", params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Stored events as dicts (for receipts, history and tests), oldest first."""
    columns = ("id", *EVENT_COLUMNS)
    rows = tx.all(f"SELECT {', '.join(columns)} FROM goal_events WHERE {where} ORDER BY id", params)
    out = []
    for row in rows:
        event = dict(zip(columns, row, strict=True))
        for name in ("is_test", "skip_triggers", "enrich_profile"):
            event[name] = bool(event[name])
        for name in ("categories", "pixel_data", "sources"):
            if event[name] is not None:
                event[name] = tx.dialect.json_value(event[name])
        out.append(event)
    return out


def attach_unmatched(
    tx: Tx, *, db_id: int, kind: str, field: str | None, keys: Iterable[str], profile_id: str
) -> int:
    """Stitching: give events recorded without a profile to the profile that now owns their key."""
    count = 0
    for key in keys:
        cursor = tx.execute(
            "UPDATE goal_events SET profile_id = ? WHERE db_id = ? AND profile_id IS NULL "
            "AND match_kind = ? AND match_field = ? AND match_key = ?",
            (profile_id, db_id, kind, field, key),
        )
        count += max(cursor.rowcount, 0)
    return count
