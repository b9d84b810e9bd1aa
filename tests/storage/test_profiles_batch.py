"""profiles/import_batch on both stores (issue 4): both item shapes, every matching mode,
mixed-validity batches, items that depend on earlier items, identity conflicts, XML, and
stitching of events recorded before their profile existed."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from goalline.codecs import xml as xml_codec
from goalline.pipeline import admin
from goalline.storage.store import Store

from conftest import Seeded, events, register

URL = "/api/v1.1/profiles/import_batch"
OK = "Successful operation"


def batch(
    client: TestClient, seeded: Seeded, items: list[Any], **fields: Any
) -> list[dict[str, Any]]:
    body = {"token": seeded.token, "db_id": 1, "data": items, **fields}
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["error"] == 0, r.text
    return list(r.json()["result"])


def get(client: TestClient, seeded: Seeded, **fields: Any) -> dict[str, Any]:
    r = client.post("/api/v1.1/profiles/get", json={"token": seeded.token, "db_id": 1, **fields})
    assert r.json()["error"] == 0, r.text
    return dict(r.json()["data"])


def profile_count(store: Store) -> int:
    return int(store.call(lambda tx: tx.scalar("SELECT COUNT(*) FROM profiles"), write=False))


def ok(result: dict[str, Any]) -> str:
    assert result["error"] == 0 and result["error_text"] == OK, result
    return str(result["profile_id"])


# -- both item shapes -------------------------------------------------------------------------


def test_flat_and_wrapped_items(client: TestClient, seeded: Seeded) -> None:
    flat, wrapped = batch(
        client,
        seeded,
        [
            # the shape of shared/research/clients.md C: the item is the profile data
            {"email": "John@Example.com", "phones": ["+998900000001"], "_fname": "John",
             "CRM_ID": 101, "_bdate": "1990-01-15T00:00:00"},
            # identifiers beside a data object
            {"email": "ann@example.com", "data": {"_fname": "Ann", "age": "42"}},
        ],
    )  # fmt: skip
    john = get(client, seeded, email="john@example.com")
    assert john["id"] == ok(flat)
    assert john["phones"] == ["+998900000001"] and john["CRM_ID"] == "101"
    assert john["_bdate"] == "1990-01-15T00:00:00"
    ann = get(client, seeded, email="ann@example.com")
    assert ann["id"] == ok(wrapped)
    assert (ann["email"], ann["_fname"], ann["age"]) == ("ann@example.com", "Ann", 42)


def test_mixed_validity_batch_reports_each_item(client: TestClient, seeded: Seeded) -> None:
    results = batch(
        client,
        seeded,
        [
            {"email": "a@example.com"},
            {"email": "not an email"},
            "a string",
            {"email": "b@example.com", "data": {"age": "old"}},
            {"email": "c@example.com", "age": "old"},
            {"email": "d@example.com", "data": {"nope": 1}},
            {"phones": ["+79000000001"]},
            {"email": "e@example.com", "data": "not an object"},
            {"email": "f@example.com", "_fname": "F"},
        ],
    )
    assert [r["error"] for r in results] == [0, 400, 400, 400, 400, 400, 400, 400, 0]
    texts = [r["error_text"] for r in results]
    assert texts[1].startswith("data[1].email: not a valid email address")
    assert texts[2] == "data[2]: must be an object"
    assert texts[3] == "data[3].data.age: must be an integer"
    assert texts[4] == "data[4].age: must be an integer"
    assert texts[5] == (
        "data[5].data.nope: database 1 has no field 'nope' (add it: goalline db field add)"
    )
    assert texts[6] == "data[6].email: required when matching is email"
    assert texts[7] == "data[7].data: must be an object"
    assert all("profile_id" not in r for r in results if r["error"])
    assert get(client, seeded, email="f@example.com")["_fname"] == "F"
    r = client.post(
        "/api/v1.1/profiles/get", json={"token": seeded.token, "db_id": 1, "email": "b@example.com"}
    )
    assert r.json()["error"] == 404  # the refused item left nothing behind


def test_second_import_updates_and_creates_nothing(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    items = [{"email": f"u{i}@example.com", "age": i} for i in range(50)]
    first = batch(client, seeded, items)
    second = batch(client, seeded, [{**item, "_fname": "again"} for item in items])
    assert [ok(r) for r in first] == [ok(r) for r in second]
    assert profile_count(store) == 50
    assert get(client, seeded, email="u7@example.com")["_fname"] == "again"


def test_an_item_sees_the_items_before_it(client: TestClient, seeded: Seeded) -> None:
    results = batch(
        client,
        seeded,
        [
            {"email": "a@example.com", "phones": ["+79000000001"]},
            {"email": "A@EXAMPLE.COM", "_fname": "Ann"},  # same person: updated
            {"email": "b@example.com", "phones": ["+79000000001"]},  # phone taken by item 0
            {"email": "a@example.com", "phones": ["+79000000002"]},  # item 0 gives it up...
            {"email": "c@example.com", "phones": ["+79000000001"]},  # ...so item 4 may take it
        ],
    )
    a = ok(results[0])
    assert ok(results[1]) == a and ok(results[3]) == a
    assert results[2]["error"] == 409
    assert results[2]["error_text"] == (
        f"data[2].phones: already belongs to profile {a} in database 1"
    )
    c = ok(results[4])
    assert get(client, seeded, matching="phone", phone="+79000000001")["id"] == c
    assert get(client, seeded, email="a@example.com")["phones"] == ["+79000000002"]
    assert get(client, seeded, email="a@example.com")["_fname"] == "Ann"


def test_key_of_another_profile_is_a_conflict_naming_it(client: TestClient, seeded: Seeded) -> None:
    (first,) = batch(client, seeded, [{"email": "a@example.com", "phones": ["+79000000001"]}])
    (clash,) = batch(
        client, seeded, [{"email": "b@example.com", "data": {"phones": ["+7 900 000-00-01"]}}]
    )
    assert clash["error"] == 409
    assert clash["error_text"] == (
        f"data[0].data.phones: already belongs to profile {ok(first)} in database 1"
    )


def test_ambiguous_match_names_both_profiles(client: TestClient, seeded: Seeded) -> None:
    one, two = batch(
        client,
        seeded,
        [
            {"email": "a@example.com", "interests": ["x", "y"]},
            {"email": "b@example.com", "interests": ["x"]},
        ],
    )
    (result,) = batch(
        client,
        seeded,
        [{"field_name": "interests", "field_value": "x", "data": {"_fname": "?"}}],
        matching="custom",
    )
    assert result["error"] == 409
    first, second = sorted([ok(one), ok(two)])
    assert result["error_text"] == (
        f"data[0].matching: interests 'x' matches more than one profile in database 1 "
        f"({first}, {second}); match by a unique field instead"
    )


# -- matching modes ---------------------------------------------------------------------------


def test_matching_phone_reads_the_first_phone(client: TestClient, seeded: Seeded) -> None:
    created = batch(
        client,
        seeded,
        [{"phones": ["+7 900 111-22-33", "+79004445566"], "_fname": "P"}, {"_fname": "none"}],
        matching="phone",
    )
    pid = ok(created[0])
    assert created[1]["error_text"] == "data[1].phone: required when matching is phone"
    (updated,) = batch(
        client, seeded, [{"phone": "79004445566", "data": {"_lname": "Q"}}], matching="phone"
    )
    assert ok(updated) == pid
    profile = get(client, seeded, matching="phone", phone="+79001112233")
    assert (profile["_fname"], profile["_lname"]) == ("P", "Q")


def test_matching_custom_with_a_batch_wide_field(client: TestClient, seeded: Seeded) -> None:
    first = batch(
        client,
        seeded,
        [{"CRM_ID": "A-1", "_fname": "One"}, {"CRM_ID": "A-2"}, {"CRM_ID": "A-1", "age": 3}],
        matching="custom",
        field_name="CRM_ID",
    )
    assert ok(first[2]) == ok(first[0]) != ok(first[1])
    (by_item,) = batch(
        client,
        seeded,
        [{"field_name": "CRM_ID", "field_value": "A-2", "data": {"_fname": "Two"}}],
        matching="custom",
    )
    assert ok(by_item) == ok(first[1])
    profile = get(client, seeded, matching="custom", field_name="CRM_ID", field_value="A-1")
    assert (profile["_fname"], profile["age"]) == ("One", 3)


def test_matching_custom_field_must_exist(client: TestClient, seeded: Seeded) -> None:
    body = {"token": seeded.token, "db_id": 1, "matching": "custom", "field_name": "nope"}
    r = client.post(URL, json={**body, "data": [{"email": "a@example.com"}]})
    assert r.status_code == 400
    assert r.json()["error_text"] == "field_name: database 1 has no field 'nope'"
    (item,) = batch(client, seeded, [{"field_name": "nope", "field_value": 1}], matching="custom")
    assert item["error_text"] == "data[0].field_name: database 1 has no field 'nope'"


def test_matching_profile_id_only_updates(client: TestClient, seeded: Seeded) -> None:
    (created,) = batch(client, seeded, [{"email": "a@example.com"}])
    pid = ok(created)
    results = batch(
        client,
        seeded,
        [
            {"profile_id": pid, "data": {"_fname": "Wrapped"}},
            {"profile_id": pid, "_lname": "Flat"},
            {"profile_id": "0" * 24, "_fname": "ghost"},
        ],
        matching="profile_id",
    )
    assert ok(results[0]) == ok(results[1]) == pid
    assert results[2]["error"] == 404
    assert results[2]["error_text"] == (
        f"data[2].profile_id: no profile {'0' * 24!r} in database 1 "
        "(matching by profile_id only updates)"
    )
    profile = get(client, seeded, matching="profile_id", profile_id=pid)
    assert (profile["_fname"], profile["_lname"]) == ("Wrapped", "Flat")
    (other,) = batch(client, seeded, [{"email": "b@example.com"}])
    clash, moved = batch(
        client,
        seeded,
        [
            {"profile_id": pid, "data": {"email": "b@example.com"}},
            {"profile_id": pid, "data": {"email": "new@example.com"}},
        ],
        matching="profile_id",
    )
    assert clash["error_text"] == (
        f"data[0].data.email: already belongs to profile {ok(other)} in database 1"
    )
    assert ok(moved) == pid
    assert get(client, seeded, email="new@example.com")["id"] == pid


# -- the request as a whole -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"data": ...}, 400, "data: required: an array of profiles"),
        ({"data": {"email": "a@example.com"}}, 400, "data: expected array, got object"),
        ({"db_id": ...}, 400, "db_id: required"),
        ({"matching": "fuzzy"}, 400, "matching: must be one of"),
        ({"token": "nope"}, 401, "token: unknown API token"),
        ({"token": "token-db-1", "db_id": 2}, 403, "may not use database 2"),
        ({"db_id": 99}, 404, "db_id: database 99 not found"),
    ],
)
def test_request_errors_refuse_the_whole_batch(
    client: TestClient,
    seeded: Seeded,
    store: Store,
    change: dict[str, Any],
    status: int,
    text: str,
) -> None:
    body = {"token": seeded.token, "db_id": 1, "data": [{"email": "a@example.com"}], **change}
    r = client.post(URL, json={k: v for k, v in body.items() if v is not ...})
    assert r.status_code == status, r.text
    assert text in r.json()["error_text"]
    assert profile_count(store) == 0


def test_at_most_10000_items(client: TestClient, seeded: Seeded, store: Store) -> None:
    items = [{"email": f"u{i}@example.com"} for i in range(10_001)]
    r = client.post(URL, json={"token": seeded.token, "db_id": 1, "data": items})
    assert r.status_code == 400
    assert r.json()["error_text"] == "data: more than 10000 items"
    results = batch(client, seeded, items[:10_000], skip_triggers=True)
    assert sum(r["error"] == 0 for r in results) == 10_000
    assert profile_count(store) == 10_000


def test_a_repeated_request_is_replayed(client: TestClient, seeded: Seeded, store: Store) -> None:
    body = {"token": seeded.token, "db_id": 1, "data": [{"email": "a@example.com"}]}
    first = client.post(URL, json=body)
    again = client.post(URL, json=body)
    assert again.headers["duplicate-request"] == "true"
    assert again.content == first.content
    assert profile_count(store) == 1


# -- XML --------------------------------------------------------------------------------------


def post_xml(client: TestClient, body: str) -> dict[str, Any]:
    r = client.post(URL, content=body, headers={"Content-Type": "application/xml"})
    assert r.text.startswith("<?xml"), r.text
    return xml_codec.decode(r.content, frozenset({"result"}))


def test_xml_batch(client: TestClient, seeded: Seeded) -> None:
    reply = post_xml(
        client,
        f"<xml><token>{seeded.token}</token><db_id>1</db_id><skip_triggers>true</skip_triggers>"
        # a flat item: one phone is still a list, repeated tags make a list
        "<data><email>x1@example.com</email><phones>+79000000001</phones>"
        "<interests>a</interests><interests>b</interests><age>30</age></data>"
        # identifiers beside a data object
        "<data><email>x2@example.com</email><data><_fname>Two</_fname><vip>true</vip>"
        "<phones>+79000000002</phones><phones>+79000000003</phones></data></data>"
        "<data><email>bad</email></data>"
        "</xml>",
    )
    assert reply["error"] == "0"
    one, two, bad = reply["result"]
    assert one["error"] == two["error"] == "0"
    assert bad["error"] == "400" and bad["error_text"].startswith("data[2].email:")
    x1 = get(client, seeded, email="x1@example.com")
    assert x1["id"] == one["profile_id"]
    assert (x1["phones"], x1["interests"], x1["age"]) == (["+79000000001"], ["a", "b"], 30)
    x2 = get(client, seeded, email="x2@example.com")
    assert (x2["_fname"], x2["vip"]) == ("Two", True)
    assert x2["phones"] == ["+79000000002", "+79000000003"]


def test_xml_matching_phone_and_errors(client: TestClient, seeded: Seeded) -> None:
    reply = post_xml(
        client,
        f"<xml><token>{seeded.token}</token><db_id>1</db_id><matching>phone</matching>"
        "<data><phone>+79005550000</phone><data><_fname>Ph</_fname></data></data>"
        "<data><data><age>x</age></data><phone>+79005550001</phone></data></xml>",
    )
    good, bad = reply["result"]
    assert good["error"] == "0"
    assert bad["error_text"] == "data[1].data.age: must be an integer"
    assert get(client, seeded, matching="phone", phone="+79005550000")["phones"] == ["+79005550000"]
    whole = client.post(
        URL,
        content=f"<xml><token>{seeded.token}</token><db_id>x</db_id></xml>",
        headers={"Content-Type": "application/xml"},
    )
    assert whole.status_code == 400 and "<error_text>db_id:" in whole.text


# -- stitching (issue 4, item 5) --------------------------------------------------------------


def history(client: TestClient, seeded: Seeded, **fields: Any) -> list[dict[str, Any]]:
    r = client.post(
        "/api/v1.1/subscribers/history_get",
        json={"token": seeded.token, "list_id": 1, **fields},
    )
    assert r.json()["error"] == 0, r.text
    return list(r.json()["data"])


def test_goals_before_the_profile_show_after_a_batch_import(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    """The issue's scenario: goals for an unknown email, then an import of that email, then
    the goals in its history and their values in profiles/get's enrichment fields."""
    register(
        client,
        seeded,
        email="Late@Example.com",
        goal="viewed",
        city="Kazan",
        browser="Firefox",
        date="2026-01-01T10:00:00Z",
    )
    register(
        client,
        seeded,
        email="late@example.com",
        goal="bought",
        value=9.5,
        city="Paris",
        date="2026-01-02T10:00:00Z",
    )
    register(
        client,
        seeded,
        email="late@example.com",
        goal="quiet",
        os="Ubuntu",
        enrich_profile=False,
        date="2026-01-03T10:00:00Z",
    )
    register(client, seeded, email="other@example.com", goal="not mine", vendor="x")
    assert all(e["profile_id"] is None for e in events(store))

    (result,) = batch(client, seeded, [{"email": "late@example.com", "_fname": "Late"}])
    pid = ok(result)
    stitched = events(store, "profile_id = ?", (pid,))
    assert [e["goal"] for e in stitched] == ["viewed", "bought", "quiet"]
    assert [a["goal"] for a in history(client, seeded, email="late@example.com")] == [
        "quiet",
        "bought",
        "viewed",
    ]
    profile = get(client, seeded, email="late@example.com")
    assert profile["_city"] == "Paris"  # the newer event's value
    assert profile["_browser"] == "Firefox"
    assert "_os" not in profile  # that event had enrich_profile false
    assert "_vendor" not in profile  # another person's event
    assert events(store, "goal = ?", ("not mine",))[0]["profile_id"] is None


def test_stitched_events_never_overwrite_imported_data(client: TestClient, seeded: Seeded) -> None:
    register(client, seeded, matching="phone", phone="+79007770000", city="Old", goal="g",
             date="2026-01-01T00:00:00Z")  # fmt: skip
    (result,) = batch(
        client, seeded, [{"phones": ["+79007770000"], "_city": "Imported"}], matching="phone"
    )
    profile = get(client, seeded, matching="profile_id", profile_id=ok(result))
    assert profile["_city"] == "Imported"
    assert [a["goal"] for a in history(client, seeded, profile_id=ok(result))] == ["g"]


def test_stitching_by_a_custom_field(client: TestClient, seeded: Seeded, store: Store) -> None:
    register(client, seeded, matching="custom", field_name="CRM_ID", field_value=555,
             goal="crm", region="Ryazan")  # fmt: skip
    (result,) = batch(client, seeded, [{"email": "crm@example.com", "CRM_ID": "555"}])
    assert [e["profile_id"] for e in events(store)] == [ok(result)]
    assert get(client, seeded, email="crm@example.com")["_region"] == "Ryazan"


def test_single_import_and_create_policy_replay_enrichment(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    register(client, seeded, email="one@example.com", goal="g", city="Tver")
    r = client.post(
        "/api/v1.1/profiles/import",
        json={"token": seeded.token, "db_id": 1, "email": "one@example.com"},
    )
    assert get(client, seeded, email="one@example.com")["_city"] == "Tver"
    assert events(store)[0]["profile_id"] == r.json()["profile_id"]

    register(client, seeded, email="two@example.com", goal="first", city="Omsk",
             date="2026-01-01T00:00:00Z")  # fmt: skip
    store.call(lambda tx: admin.set_policy(tx, db_id=1, policy="create"))
    created = register(client, seeded, email="two@example.com", goal="second")
    pid = created.json()["profile_id"]
    assert [e["profile_id"] for e in events(store, "match_key = ?", ("two@example.com",))] == [
        pid,
        pid,
    ]
    assert get(client, seeded, email="two@example.com")["_city"] == "Omsk"
    assert [a["goal"] for a in history(client, seeded, email="two@example.com")][-1] == "first"
