"""The first schema: databases, fields, pixels, tokens, profiles and goal events.

One DDL text for both stores; ``{autoid}``, ``{json}``, ``{bigint}``, ``{double}`` and ``{bool}``
are the only places the dialects differ (goalline/storage/dialect.py).

Frozen: the schema as it was when this step was written, every column spelled out. A migration
never reads the application's own lists (``goalline.model.EVENT_ATTRS``): when one grows, a
later step adds the column, and a fresh install must still reach it from this schema.
"""

from typing import Any

from yoyo import step  # type: ignore[import-untyped]

from goalline.storage.dialect import run_ddl

__depends__: set[str] = set()

DDL = [
    """CREATE TABLE databases (
        id {bigint} PRIMARY KEY,
        name TEXT NOT NULL,
        unknown_profile TEXT NOT NULL DEFAULT 'record',
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE fields (
        db_id {bigint} NOT NULL REFERENCES databases (id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (db_id, name)
    )""",
    """CREATE TABLE pixels (
        id {bigint} PRIMARY KEY,
        name TEXT NOT NULL,
        db_id {bigint} REFERENCES databases (id),
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE tokens (
        id {bigint} PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        all_databases {bool} NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE token_databases (
        token_id {bigint} NOT NULL REFERENCES tokens (id),
        db_id {bigint} NOT NULL REFERENCES databases (id),
        PRIMARY KEY (token_id, db_id)
    )""",
    """CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        db_id {bigint} NOT NULL REFERENCES databases (id),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    # Every profile field (email, phones, custom and system fields) as JSON text, with the time
    # the value describes: a late event never overwrites a newer value (SPEC §2).
    """CREATE TABLE profile_fields (
        profile_id TEXT NOT NULL REFERENCES profiles (id),
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        written_at TEXT NOT NULL,
        PRIMARY KEY (profile_id, name)
    )""",
    # What matching searches: one row per email, phone, custom value or tag.
    """CREATE TABLE profile_keys (
        db_id {bigint} NOT NULL,
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        profile_id TEXT NOT NULL REFERENCES profiles (id),
        PRIMARY KEY (db_id, name, key, profile_id)
    )""",
    """CREATE UNIQUE INDEX profile_keys_unique ON profile_keys (db_id, name, key)
        WHERE name IN ('email', 'phones')""",
    "CREATE INDEX profile_keys_profile ON profile_keys (profile_id)",
    """CREATE TABLE goal_events (
        id {autoid},
        db_id {bigint} NOT NULL,
        pixel_id {bigint} NOT NULL,
        profile_id TEXT,
        matching TEXT NOT NULL,
        match_kind TEXT NOT NULL,
        match_field TEXT,
        match_key TEXT NOT NULL,
        goal TEXT,
        value {double},
        event_at TEXT NOT NULL,
        date_raw TEXT,
        received_at TEXT NOT NULL,
        is_test {bool} NOT NULL,
        skip_triggers {bool} NOT NULL,
        enrich_profile {bool} NOT NULL,
        token_id {bigint} NOT NULL,
        vendor TEXT,
        external_type TEXT,
        external_event_id TEXT,
        altcraft_client_id TEXT,
        referer TEXT,
        user_agent TEXT,
        accept_language TEXT,
        language TEXT,
        client_ip TEXT,
        client_ip_v4 TEXT,
        client_ip_v6 TEXT,
        browser TEXT,
        os TEXT,
        device TEXT,
        lat {double},
        lon {double},
        country TEXT,
        region TEXT,
        city TEXT,
        address TEXT,
        zip TEXT,
        time_zone TEXT,
        utm_content TEXT,
        utm_medium TEXT,
        utm_source TEXT,
        utm_campaign TEXT,
        utm_term TEXT,
        net_ssid TEXT,
        net_mac_addr TEXT,
        net_gateway_ipv4 TEXT,
        net_gateway_ipv6 TEXT,
        send_message_id TEXT,
        loyalty_id {bigint},
        promo_id TEXT,
        endpoint_eid TEXT,
        order_eid TEXT,
        product_eid TEXT,
        sku_eid TEXT,
        region_eid TEXT,
        count_items {bigint},
        categories {json},
        pixel_data {json},
        sources {json}
    )""",
    "CREATE INDEX goal_events_profile ON goal_events (profile_id, event_at)",
    # Stitching: unattached events found by their match key when the profile appears.
    """CREATE INDEX goal_events_unmatched ON goal_events (db_id, match_kind, match_field, match_key)
        WHERE profile_id IS NULL""",
]


def apply(conn: Any) -> None:
    run_ddl(conn, DDL)


def rollback(conn: Any) -> None:
    cursor = conn.cursor()
    for table in (
        "goal_events",
        "profile_keys",
        "profile_fields",
        "profiles",
        "token_databases",
        "tokens",
        "pixels",
        "fields",
        "databases",
    ):
        cursor.execute(f"DROP TABLE {table}")


steps = [step(apply, rollback)]
