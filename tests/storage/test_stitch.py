"""Stitching in bulk (issue 11) on both stores: the events waiting for the keys of many profiles
are attached and their enrichment replayed with a fixed number of statements, leaving exactly
what replaying event by event, oldest first and newer-only per field, left: the newest event's
value of each field (the later event on equal dates), never over newer data on the profile;
through profiles/import_batch, profiles/import and the ``create`` policy alike."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from unittest import mock

import msgspec
import pytest
from starlette.testclient import TestClient

from goalline.pipeline import admin, bulk
from goalline.storage import queries as q
from goalline.storage.store import Store, Tx

from conftest import Seeded, events, now, register

BATCH = "/api/v1.1/profiles/import_batch"
IMPORT = "/api/v1.1/profiles/import"
#: The ways a profile comes to own a key that events wait for.
PATHS = ("batch", "single", "create")


def imported(client: TestClient, seeded: Seeded, path: str, **item: Any) -> str:
    """Make a profile own ``item``'s keys through ``path``; its id."""
    if path == "batch":
        r = client.post(BATCH, json={"token": seeded.token, "db_id": 1, "data": [item]})
        assert r.json()["error"] == 0, r.text
        (result,) = r.json()["result"]
        assert result["error"] == 0, result
        return str(result["profile_id"])
    if path == "single":
        r = client.post(IMPORT, json={"token": seeded.token, "db_id": 1, "data": item})
        assert r.json()["error"] == 0, r.text
        return str(r.json()["profile_id"])
    # the create policy: a goal for the email creates the profile (and writes no fields)
    assert list(item) == ["email"], "the create policy makes a profile from its match key"
    r = register(client, seeded, email=item["email"], goal="trigger", enrich_profile=False)
    assert r.json()["error"] == 0, r.text
    return str(r.json()["profile_id"])


def fields_of(store: Store, profile_id: str) -> dict[str, tuple[Any, str]]:
    """A profile's stored fields: name → (value, written_at)."""

    def read(tx: Tx) -> dict[str, tuple[Any, str]]:
        rows = tx.all(
            "SELECT name, value, written_at FROM profile_fields WHERE profile_id = ?",
            (profile_id,),
        )
        return {name: (msgspec.json.decode(value), at) for name, value, at in rows}

    return store.call(read, write=False)


def enrichment_of(store: Store, profile_id: str) -> dict[str, tuple[Any, str]]:
    return {
        name: kept
        for name, kept in fields_of(store, profile_id).items()
        if name not in ("email", "phones", "_fname", "CRM_ID", "interests")
    }


def at(day: int) -> str:
    """A goal's ``date`` in January 2026 ..."""
    return f"2026-01-{day:02d}T10:00:00Z"


def stored_at(day: int) -> str:
    """... and the event_at (so the field's written_at) it is stored with."""
    return f"2026-01-{day:02d}T10:00:00.000000Z"


def policy(store: Store, name: str) -> None:
    store.call(lambda tx: admin.set_policy(tx, db_id=1, policy=name))


# -- what the replay leaves -------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_newest_event_wins_each_field(
    client: TestClient, seeded: Seeded, store: Store, path: str
) -> None:
    """Events registered out of order, with different fields: each field takes the value of
    the newest event that has it, with that event's date; enrich_profile false writes nothing."""
    email = "late@example.com"
    register(client, seeded, email=email, goal="a", city="Kazan", browser="Firefox", date=at(1))
    register(client, seeded, email=email, goal="b", city="Paris", date=at(5))
    register(client, seeded, email=email, goal="c", city="Omsk", os="Ubuntu", vendor="v1",
             date=at(3))  # fmt: skip
    register(client, seeded, email=email, goal="d", city="Quiet", region="Quiet",
             enrich_profile=False, date=at(9))  # fmt: skip
    register(client, seeded, email=email, goal="e", vendor="v2", date=at(2))
    if path == "create":
        policy(store, "create")
    pid = imported(client, seeded, path, email=email)

    assert sorted(e["goal"] for e in events(store, "profile_id = ?", (pid,))) == [
        *"abcde",
        *(["trigger"] if path == "create" else []),
    ]
    assert enrichment_of(store, pid) == {
        "_city": ("Paris", stored_at(5)),
        "_browser": ("Firefox", stored_at(1)),
        "_os": ("Ubuntu", stored_at(3)),
        "_vendor": ("v1", stored_at(3)),
    }


@pytest.mark.parametrize("path", PATHS)
def test_on_equal_dates_the_later_event_wins(
    client: TestClient, seeded: Seeded, store: Store, path: str
) -> None:
    """Two events of one date write the same field: the one registered later (the larger
    event id) wins, as it did when each event's values were written in turn."""
    email = "tie@example.com"
    register(client, seeded, email=email, goal="first", city="First", region="R1", date=at(4))
    register(client, seeded, email=email, goal="second", city="Second", date=at(4))
    register(client, seeded, email=email, goal="older", city="Older", region="R0", date=at(3))
    if path == "create":
        policy(store, "create")
    pid = imported(client, seeded, path, email=email)
    assert enrichment_of(store, pid) == {
        "_city": ("Second", stored_at(4)),
        "_region": ("R1", stored_at(4)),
    }


@pytest.mark.parametrize("path", ["batch", "single"])
def test_on_equal_dates_the_later_event_wins_across_keys(
    client: TestClient, seeded: Seeded, store: Store, path: str
) -> None:
    """Events waiting under different keys of one profile (its phone, then its email) are
    replayed in the order they were registered, as if they had matched then: on equal dates
    the email's later event wins, though the phone's keys are indexed after the email's."""
    phone = "+79004440000"
    register(client, seeded, matching="phone", phone=phone, goal="by phone", city="Phone city",
             date=at(4))  # fmt: skip
    register(client, seeded, email="keys@example.com", goal="by email", city="Email city",
             date=at(4))  # fmt: skip
    pid = imported(client, seeded, path, email="keys@example.com", phones=[phone])
    assert len(events(store, "profile_id = ?", (pid,))) == 2
    assert enrichment_of(store, pid) == {"_city": ("Email city", stored_at(4))}


def test_an_older_event_never_overwrites_newer_profile_data(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    """A profile that gains a key: the events waiting for it replay only where the profile
    holds nothing newer; a newer event still replaces older enrichment."""
    pid = imported(client, seeded, "batch", email="known@example.com", _city="Imported")
    r = register(client, seeded, email="known@example.com", goal="matched", browser="Opera",
                 region="Old region", date=at(2))  # fmt: skip
    assert r.json()["profile_id"] == pid
    phone = "+79005550000"
    register(client, seeded, matching="phone", phone=phone, goal="w1", city="Old city",
             browser="Chrome", date=at(6))  # fmt: skip
    register(client, seeded, matching="phone", phone=phone, goal="w2", region="Older region",
             date=at(1))  # fmt: skip
    imported_at = fields_of(store, pid)["_city"][1]

    r = client.post(
        BATCH,
        json={"token": seeded.token, "db_id": 1, "matching": "email",
              "data": [{"email": "known@example.com", "phones": [phone]}]},
    )  # fmt: skip
    assert r.json()["result"][0]["profile_id"] == pid
    assert sorted(e["goal"] for e in events(store, "profile_id = ?", (pid,))) == [
        "matched",
        "w1",
        "w2",
    ]
    assert enrichment_of(store, pid) == {
        "_city": ("Imported", imported_at),  # the import is newer than the event
        "_browser": ("Chrome", stored_at(6)),  # the waiting event is newer than the matched one
        "_region": ("Old region", stored_at(2)),  # the waiting event is older
    }


def test_many_profiles_in_one_batch_by_every_kind_of_key(
    client: TestClient, seeded: Seeded, store: Store
) -> None:
    """Profiles of one batch each get their own events, found by email, phone or custom field,
    and each its own newest values; events of another database, or of nobody in the batch,
    stay where they were."""
    for i in range(3):
        email = f"p{i}@example.com"
        register(client, seeded, email=email, goal=f"e{i}", city=f"City {i}", date=at(1 + i))
        register(client, seeded, email=email, goal=f"e{i}", city=f"New {i}", date=at(10 + i))
        register(client, seeded, email=email, goal=f"e{i}", city=f"Mid {i}",
                 region=f"Region {i}", date=at(5 + i))  # fmt: skip
    register(client, seeded, matching="phone", phone="+79001112233", goal="by phone", city="Tula",
             date=at(7))  # fmt: skip
    register(client, seeded, matching="custom", field_name="CRM_ID", field_value="77", goal="crm",
             city="Crm city", date=at(8))  # fmt: skip
    # the same email in database 2 (pixel 3), and someone not in the batch
    register(client, seeded, db_id=2, pixel_id=3, email="p0@example.com", goal="other db",
             city="Elsewhere", browser="Other", date=at(20))  # fmt: skip
    register(client, seeded, email="nobody@example.com", goal="nobody", city="Nowhere")

    r = client.post(
        BATCH,
        json={"token": seeded.token, "db_id": 1, "data": [
            {"email": "p0@example.com", "phones": ["+79001112233"]},
            {"email": "p1@example.com"},
            {"email": "p2@example.com", "CRM_ID": "77"},
        ]},
    )  # fmt: skip
    p0, p1, p2 = (str(result["profile_id"]) for result in r.json()["result"])
    assert sorted(e["goal"] for e in events(store, "profile_id = ?", (p0,))) == [
        "by phone",
        *["e0"] * 3,
    ]
    assert sorted(e["goal"] for e in events(store, "profile_id = ?", (p1,))) == ["e1"] * 3
    assert sorted(e["goal"] for e in events(store, "profile_id = ?", (p2,))) == [
        "crm",
        *["e2"] * 3,
    ]
    assert enrichment_of(store, p0) == {
        "_city": ("New 0", stored_at(10)),  # newer than the phone's event (day 7)
        "_region": ("Region 0", stored_at(5)),
    }
    assert enrichment_of(store, p1) == {
        "_city": ("New 1", stored_at(11)),
        "_region": ("Region 1", stored_at(6)),
    }
    assert enrichment_of(store, p2) == {
        "_city": ("New 2", stored_at(12)),  # newer than the custom field's event (day 8)
        "_region": ("Region 2", stored_at(7)),
    }
    left = events(store, "profile_id IS NULL")
    assert sorted(e["goal"] for e in left) == ["nobody", "other db"]
    assert {e["db_id"] for e in left if e["goal"] == "other db"} == {2}


@pytest.mark.parametrize("path", ["batch", "single"])
def test_tags_never_attach_events(
    client: TestClient, seeded: Seeded, store: Store, path: str
) -> None:
    """An event matched by a tags field's value waits for good: tags never match events."""
    r = register(client, seeded, matching="custom", field_name="interests", field_value="sport",
                 goal="by tag", city="Tagged")  # fmt: skip
    assert r.json()["error"] == 0, r.text
    (waiting,) = events(store)
    assert (waiting["match_field"], waiting["match_key"], waiting["profile_id"]) == (
        "interests",
        "sport",
        None,
    )
    pid = imported(client, seeded, path, email="tags@example.com", interests=["sport"])
    assert events(store)[0]["profile_id"] is None
    assert enrichment_of(store, pid) == {}


def test_small_chunks_attach_everything(
    client: TestClient, seeded: Seeded, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys, events and field rows split over several statements still all arrive."""
    monkeypatch.setattr(q, "_IN_CHUNK", 2)
    monkeypatch.setattr(q, "_VALUES_PER_INSERT", 8)  # two field rows a statement
    for i in range(5):
        for day in (3, 1):
            register(client, seeded, email=f"c{i}@example.com", goal="g", city=f"{i}/{day}",
                     browser="Chrome" if day == 3 else "Firefox", date=at(day))  # fmt: skip
    r = client.post(
        BATCH,
        json={"token": seeded.token, "db_id": 1,
              "data": [{"email": f"c{i}@example.com"} for i in range(5)]},
    )  # fmt: skip
    for i, result in enumerate(r.json()["result"]):
        pid = str(result["profile_id"])
        assert len(events(store, "profile_id = ?", (pid,))) == 2
        assert enrichment_of(store, pid) == {
            "_city": (f"{i}/3", stored_at(3)),
            "_browser": ("Chrome", stored_at(3)),
        }
    assert events(store, "profile_id IS NULL") == []


# -- how many statements ----------------------------------------------------------------------


@pytest.fixture
def statements() -> Iterator[list[tuple[str, int]]]:
    """Every statement run through a Tx meanwhile: (text, number of bound values)."""
    seen: list[tuple[str, int]] = []
    execute = Tx.execute

    def recorded(tx: Tx, query: str, params: Sequence[Any] = ()) -> Any:
        seen.append((query, len(params)))
        return execute(tx, query, params)

    with mock.patch.object(Tx, "execute", recorded):
        yield seen


def import_counted(store: Store, emails: list[str], seen: list[tuple[str, int]]) -> int:
    """Import ``emails`` in one batch through the batch's unit of work; its statement count."""

    def work(tx: Tx) -> None:
        fields = tx.fields_of(1)
        checked = bulk.check_items(
            [{"email": email} for email in emails], fields=fields, db_id=1, matching="email",
            field_name=None, phone_region="",
        )  # fmt: skip
        results = bulk.apply_items(tx, db_id=1, fields=fields, checked=checked, now=now())
        assert all(r.error is None for r in results)

    seen.clear()
    store.call(work)
    return len(seen)


def test_a_batch_stitches_with_a_fixed_number_of_statements(
    client: TestClient, seeded: Seeded, store: Store, statements: list[tuple[str, int]]
) -> None:
    """However many profiles and events: one read, one UPDATE, one field upsert (up to 900
    keys and events and 1,000 field rows), and never a single-row field upsert."""
    counts = []
    for size in (2, 40):
        emails = [f"n{size}-{i}@example.com" for i in range(size)]
        for i, email in enumerate(emails):
            for day in (1, 2):
                register(client, seeded, email=email, goal="g", city=f"C{day}", zip=f"Z{i}",
                         browser="Opera", date=at(day))  # fmt: skip
        counts.append(import_counted(store, emails, statements))
        assert not [
            text
            for text, values in statements
            if text.startswith("INSERT INTO profile_fields") and values == 4
        ]
        assert events(store, "profile_id IS NULL") == []
    assert counts[0] == counts[1]
    # fields, profile keys read, profiles, keys, any waiting, waiting events, UPDATE,
    # stitched fields, imported fields
    assert counts[0] == 9
