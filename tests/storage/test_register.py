"""goals/register against a real store (SQLite and PostgreSQL): authorisation, every matching
mode, every unknown-profile policy, profile enrichment ordering, atomicity."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from goalline.pipeline import admin
from goalline.storage import queries as q
from goalline.storage.store import Store

from conftest import Seeded, events, register


def import_profile(client: TestClient, seeded: Seeded, **fields: Any) -> str:
    body = {"token": seeded.token, "db_id": 1, **fields}
    r = client.post("/api/v1.1/profiles/import", json=body)
    assert r.json()["error"] == 0, r.text
    return str(r.json()["profile_id"])


def get_profile(client: TestClient, seeded: Seeded, **fields: Any) -> dict[str, Any]:
    body = {"token": seeded.token, "db_id": 1, **fields}
    r = client.post("/api/v1.1/profiles/get", json=body)
    assert r.json()["error"] == 0, r.text
    return dict(r.json()["data"])


# -- authorisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"token": ...}, 401, "token: required"),
        ({"token": "nope"}, 401, "token: unknown API token"),
        ({"token": "token-db-1", "db_id": 2, "pixel_id": 3}, 403, "may not use database 2"),
        ({"token": "token-db-1", "db_id": 99}, 403, "may not use database 99"),
        ({"db_id": 99}, 404, "db_id: database 99 not found"),
        ({"pixel_id": 99}, 404, "pixel_id: pixel 99 not found"),
        ({"pixel_id": 3}, 403, "pixel_id: pixel 3 belongs to database 2, not 1"),
    ],
)
def test_authorisation_errors(
    client: TestClient,
    seeded: Seeded,
    store: Store,
    change: dict[str, Any],
    status: int,
    text: str,
) -> None:
    r = register(client, seeded, email="a@example.com", goal="g", **change)
    assert r.status_code == status
    assert r.json()["error"] == status
    assert text in r.json()["error_text"]
    assert events(store) == []


def test_unbound_pixel_serves_any_database(client: TestClient, seeded: Seeded) -> None:
    assert register(client, seeded, email="a@example.com", pixel_id=2, db_id=2).json()["error"] == 0


def test_scoped_token_uses_its_database(client: TestClient, seeded: Seeded) -> None:
    r = register(client, seeded, token=seeded.scoped_token, email="a@example.com", goal="g")
    assert r.json()["error"] == 0


@pytest.mark.parametrize("placement", ["body", "bearer", "query"])
def test_token_placements(client: TestClient, seeded: Seeded, placement: str) -> None:
    body = {"db_id": 1, "pixel_id": 1, "email": "a@example.com", "goal": "g"}
    url, headers = "/api/v1.1/goals/register", {}
    if placement == "body":
        body["token"] = seeded.token
    elif placement == "bearer":
        headers["Authorization"] = f"Bearer {seeded.token}"
    else:
        url += f"?token={seeded.token}"
    r = client.post(url, json=body, headers=headers)
    assert r.json()["error"] == 0, r.text


def test_body_token_wins_over_header(client: TestClient, seeded: Seeded) -> None:
    body = {"token": "nope", "db_id": 1, "pixel_id": 1, "email": "a@example.com"}
    r = client.post(
        "/api/v1.1/goals/register", json=body, headers={"Authorization": f"Bearer {seeded.token}"}
    )
    assert r.json()["error"] == 401


# -- goals -------------------------------------------------------------------------------------


def test_goal_and_goals_each_become_an_event(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    r = register(
        client,
        seeded,
        email="a@example.com",
        goal="card",
        value=1.5,
        goals=[
            {"goal": "cart", "value": 10.99},
            {"goal": "two", "value": -12.34},
            {"goal": "no value"},
        ],
    )
    assert r.json()["error"] == 0
    stored = [(e["goal"], e["value"]) for e in events(store)]
    assert stored == [("card", 1.5), ("cart", 10.99), ("two", -12.34), ("no value", None)]
    assert r.json()["event_ids"] == [e["id"] for e in events(store)]


def test_no_goal_records_one_pixel_event(client: TestClient, seeded: Seeded, store: Store) -> None:
    assert register(client, seeded, email="a@example.com").json()["error"] == 0
    assert [(e["goal"], e["value"]) for e in events(store)] == [(None, None)]


def test_flags_are_stored_as_given(client: TestClient, seeded: Seeded, store: Store) -> None:
    register(client, seeded, email="a@example.com", goal="a")
    register(
        client,
        seeded,
        email="a@example.com",
        goal="b",
        is_test=True,
        skip_triggers=True,
        enrich_profile=False,
    )
    flags = [(e["is_test"], e["skip_triggers"], e["enrich_profile"]) for e in events(store)]
    assert flags == [(False, False, True), (True, True, False)]


def test_json_columns_round_trip(client: TestClient, seeded: Seeded, store: Store) -> None:
    data = {"hello": "hi", "arr": [1, 2, 3], "int_val": 56893, "bool_val": True, "n": None}
    register(client, seeded, email="a@example.com", pixel_data=data, categories=["c1", "c2"])
    (event,) = events(store)
    assert event["pixel_data"] == data
    assert event["categories"] == ["c1", "c2"]


def test_date_orders_events_and_keeps_raw_text(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    register(client, seeded, email="a@example.com", date="2006-01-25T15:04:05+07:00")
    (event,) = events(store)
    assert event["event_at"] == "2006-01-25T08:04:05.000000Z"
    assert event["date_raw"] == "2006-01-25T15:04:05+07:00"


# -- matching ----------------------------------------------------------------------------------


def test_match_by_email_is_case_insensitive(client: TestClient, seeded: Seeded) -> None:
    pid = import_profile(client, seeded, email="John@Example.com")
    r = register(client, seeded, email="  JOHN@example.COM ", goal="g")
    assert r.json()["profile_id"] == pid
    r = register(client, seeded, matching="email_profile", email="john@example.com", goal="g")
    assert r.json()["profile_id"] == pid


def test_match_by_phone_in_any_spelling(client: TestClient, seeded: Seeded) -> None:
    pid = import_profile(
        client,
        seeded,
        matching="phone",
        phone="+79000000000",
        data={"phones": ["+7 900 000-00-00", "+79000000009"]},
    )
    for spelling in ("+7 (900) 000-00-00", "79000000000", "+79000000009"):
        r = register(client, seeded, matching="phone", phone=spelling, goal="g")
        assert r.json()["profile_id"] == pid, spelling


def test_match_by_profile_id(client: TestClient, seeded: Seeded, store: Store) -> None:
    pid = import_profile(client, seeded, email="a@example.com")
    r = register(client, seeded, matching="profile_id", profile_id=pid, goal="g")
    assert r.json()["profile_id"] == pid
    # the same id asked for in another database does not match
    r = register(client, seeded, db_id=2, pixel_id=3, matching="profile_id", profile_id=pid)
    assert "profile_id" not in r.json()


@pytest.mark.parametrize(
    ("field", "stored", "sent"),
    [
        ("CRM_ID", "123420", 123420),
        ("CRM_ID", "A-1", "A-1"),
        ("age", 42, "42"),
        ("score", 4.5, 4.5),
        ("vip", True, "true"),
        ("birthday", "1990-01-15", "1990-01-15"),
    ],
)
def test_match_by_custom_field(
    client: TestClient, seeded: Seeded, field: str, stored: Any, sent: Any
) -> None:
    pid = import_profile(client, seeded, email="a@example.com", data={field: stored})
    r = register(client, seeded, matching="custom", field_name=field, field_value=sent, goal="g")
    assert r.json()["profile_id"] == pid


def test_match_by_tags_needs_every_tag(client: TestClient, seeded: Seeded) -> None:
    both = import_profile(client, seeded, email="a@example.com", data={"interests": ["a", "b"]})
    import_profile(client, seeded, email="b@example.com", data={"interests": "a, c"})
    r = register(client, seeded, matching="custom", field_name="interests", field_value="b, a")
    assert r.json()["profile_id"] == both
    r = register(client, seeded, matching="custom", field_name="interests", field_value="a")
    assert r.json()["error"] == 409  # two profiles hold "a": ambiguous, never a silent pick
    assert "matches more than one profile" in r.json()["error_text"]


def test_custom_field_must_exist(client: TestClient, seeded: Seeded) -> None:
    r = register(client, seeded, matching="custom", field_name="nope", field_value="1")
    assert r.status_code == 400
    assert r.json()["error_text"] == "field_name: database 1 has no field 'nope'"


def test_custom_value_must_fit_the_field_type(client: TestClient, seeded: Seeded) -> None:
    r = register(client, seeded, matching="custom", field_name="age", field_value="old")
    assert r.json()["error_text"] == "field_value: must be an integer"


def test_matching_searches_only_its_database(client: TestClient, seeded: Seeded) -> None:
    import_profile(client, seeded, email="a@example.com")
    r = register(client, seeded, db_id=2, pixel_id=3, email="a@example.com")
    assert r.json()["error"] == 0 and "profile_id" not in r.json()


# -- unknown-profile policies ------------------------------------------------------------------


def set_policy(store: Store, policy: str) -> None:
    store.call(lambda tx: admin.set_policy(tx, db_id=1, policy=policy))


def test_policy_record_stores_without_profile_and_stitches_later(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    r = register(client, seeded, email="new@example.com", goal="early")
    assert r.json()["error"] == 0 and "profile_id" not in r.json()
    (event,) = events(store)
    assert event["profile_id"] is None and event["match_key"] == "new@example.com"
    pid = import_profile(client, seeded, email="NEW@example.com")
    assert events(store)[0]["profile_id"] == pid


def test_policy_reject_stores_nothing(client: TestClient, seeded: Seeded, store: Store) -> None:
    set_policy(store, "reject")
    r = register(client, seeded, email="new@example.com", goal="g")
    assert r.status_code == 404
    assert r.json()["error_text"] == (
        "profile: no profile with email 'new@example.com' in database 1"
    )
    assert events(store) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "new@example.com"}, {"email": "new@example.com"}),
        ({"matching": "phone", "phone": "+79001112233"}, {"phones": ["+79001112233"]}),
        ({"matching": "custom", "field_name": "CRM_ID", "field_value": 77}, {"CRM_ID": "77"}),
    ],
)
def test_policy_create_makes_the_profile(
    client: TestClient,
    seeded: Seeded,
    store: Store,
    fields: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    set_policy(store, "create")
    r = register(client, seeded, goal="g", **fields)
    pid = r.json()["profile_id"]
    assert events(store)[0]["profile_id"] == pid
    profile = get_profile(client, seeded, matching="profile_id", profile_id=pid)
    assert {k: profile[k] for k in expected} == expected
    again = register(client, seeded, goal="g", **fields)
    assert again.json()["profile_id"] == pid


def test_unknown_profile_id_is_recorded_or_refused(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    r = register(client, seeded, matching="profile_id", profile_id="0" * 24)
    assert r.json()["error"] == 0 and "profile_id" not in r.json()  # record
    set_policy(store, "create")  # a profile id is never invented, so create cannot apply
    r = register(client, seeded, matching="profile_id", profile_id="0" * 24, goal="again")
    assert r.status_code == 404
    assert len(events(store)) == 1


# -- profile enrichment ------------------------------------------------------------------------

ENRICHED = {
    "vendor": "altcraft",
    "browser": "Chrome",
    "os": "Ubuntu",
    "device": "Desktop",
    "client_ip_v4": "10.1.2.3",
    "country": "Russian Federation",
    "region": "Ryazan",
    "city": "Ryazan",
    "zip": "390000",
    "time_zone": "europe/moscow",
    "lat": 55.2,
    "lon": 19.4,
    "accept_language": "fr-CH, fr;q=0.9",
}


def test_enrich_profile_writes_system_fields(client: TestClient, seeded: Seeded) -> None:
    pid = import_profile(client, seeded, email="a@example.com")
    register(client, seeded, email="a@example.com", goal="g", **ENRICHED)
    profile = get_profile(client, seeded, matching="profile_id", profile_id=pid)
    assert {k: v for k, v in profile.items() if k.startswith("_") and "time" not in k} == {
        "_vendor": "altcraft",
        "_browser": "Chrome",
        "_os": "Ubuntu",
        "_device": "Desktop",
        "_ip": "10.1.2.3",
        "_country": "RU",
        "_region": "Ryazan",
        "_city": "Ryazan",
        "_postal_code": "390000",
        "_tz": "Europe/Moscow",
        "_lat": 55.2,
        "_lon": 19.4,
        "_language": "fr",
    }


def test_enrich_profile_false_leaves_the_profile(client: TestClient, seeded: Seeded) -> None:
    pid = import_profile(client, seeded, email="a@example.com")
    register(client, seeded, email="a@example.com", enrich_profile=False, **ENRICHED)
    profile = get_profile(client, seeded, matching="profile_id", profile_id=pid)
    assert "_browser" not in profile and "_vendor" not in profile


def test_late_event_never_overwrites_newer_profile_data(client: TestClient, seeded: Seeded) -> None:
    pid = import_profile(client, seeded, email="a@example.com")
    register(client, seeded, email="a@example.com", city="New", date="2026-01-02T00:00:00Z")
    register(client, seeded, email="a@example.com", city="Old", date="2025-01-01T00:00:00Z")
    profile = get_profile(client, seeded, matching="profile_id", profile_id=pid)
    assert profile["_city"] == "New"
    register(client, seeded, email="a@example.com", city="Newest", date="2026-01-03T00:00:00Z")
    assert get_profile(client, seeded, matching="profile_id", profile_id=pid)["_city"] == "Newest"


# -- atomicity ---------------------------------------------------------------------------------


def test_failed_unit_of_work_leaves_nothing(store: Store, seeded: Seeded) -> None:
    def half_done(tx: Any) -> None:
        admin.create_pixel(tx, name="half", pixel_id=50, now="2026-01-01T00:00:00.000000Z")
        raise RuntimeError("crash between writes")

    with pytest.raises(RuntimeError):
        store.call(half_done)
    assert store.call(lambda tx: tx.get_pixel(50), write=False) is None


def test_two_profiles_cannot_share_an_email(client: TestClient, seeded: Seeded) -> None:
    a = import_profile(client, seeded, email="a@example.com")
    b = import_profile(client, seeded, email="b@example.com")
    r = client.post(
        "/api/v1.1/profiles/import",
        json={
            "token": seeded.token,
            "db_id": 1,
            "matching": "profile_id",
            "profile_id": b,
            "data": {"email": "a@example.com"},
        },
    )
    assert r.json()["error"] == 409
    assert r.json()["error_text"] == f"data.email: already belongs to profile {a} in database 1"


def test_many_goals_are_stored_in_goal_order_with_ascending_ids(
    store: Store, seeded: Seeded, client: TestClient
) -> None:
    """Enough goals for PostgreSQL's COPY path (q.COPY_MIN_ROWS) get the same reply and rows
    as a few do: one id per goal, ascending in goal order, each row with its own goal."""
    count = q.COPY_MIN_ROWS + 50
    goals = [{"goal": f"g{i}", "value": i} for i in range(count)]
    r = register(client, seeded, email="a@example.com", goals=goals, referer="https://a.example/")
    ids = r.json()["event_ids"]
    assert len(ids) == count and ids == sorted(ids) and len(set(ids)) == count
    stored = {e["id"]: e for e in events(store)}
    assert [(stored[i]["goal"], stored[i]["value"]) for i in ids] == [
        (f"g{i}", i) for i in range(count)
    ]
    assert {stored[i]["referer"] for i in ids} == {"https://a.example/"}
    # the next registration's ids come after them
    after = register(client, seeded, email="a@example.com", goal="next").json()["event_ids"]
    assert after[0] > ids[-1]
