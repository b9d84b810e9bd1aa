from starlette.testclient import TestClient

from goalline.storage.store import Store

from conftest import Seeded, events, register


def test_register_one_goal_is_stored(client: TestClient, seeded: Seeded, store: Store) -> None:
    r = register(client, seeded, email="John@Example.com", goal="card", value=-25.5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["error"] == 0 and body["error_text"] == "Successful operation"
    stored = events(store)
    assert [(e["goal"], e["value"], e["match_key"]) for e in stored] == [
        ("card", -25.5, "john@example.com")
    ]
    assert body["event_ids"] == [stored[0]["id"]]
