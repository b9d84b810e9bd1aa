"""Demo data shared by ``goalline demo``, ``goalline serve --demo`` and the tests."""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.model import iso_utc
from goalline.pipeline import admin, profiles
from goalline.storage.ports import Store, UnitOfWork

DEMO_DB_ID = 1
DEMO_PIXEL_ID = 1
#: A fixed, published value: demo mode is for trying Goalline, never for production data.
DEMO_TOKEN = "goalline-demo-token-00000000000000"
DEMO_PROFILES: tuple[dict[str, Any], ...] = (
    {
        "email": "john@example.com",
        "phones": ["+79000000000"],
        "_fname": "John",
        "CRM_ID": "123420",
        "interests": ["audio", "sport"],
    },
    {
        "email": "anna@example.com",
        "phones": ["+79000000001"],
        "_fname": "Anna",
        "CRM_ID": "123421",
        "interests": ["books"],
    },
)


@dataclass(frozen=True)
class Demo:
    db_id: int
    pixel_id: int
    token: str
    profiles: dict[str, str]  # email → profile_id
    created: bool


def seed(store: Store) -> Demo:
    """Create the demo database, fields, pixel, token and profiles once; later calls reuse them."""
    return store.call(_seed)


def _seed(uow: UnitOfWork) -> Demo:
    now = iso_utc(dt.datetime.now(dt.UTC))
    created = uow.get_database(DEMO_DB_ID) is None
    if created:
        admin.create_database(uow, name="Demo shop", db_id=DEMO_DB_ID, now=now)
        admin.add_field(uow, db_id=DEMO_DB_ID, name="CRM_ID", type_="string", now=now)
        admin.add_field(uow, db_id=DEMO_DB_ID, name="interests", type_="tags", now=now)
        admin.create_pixel(uow, name="Demo site", db_id=DEMO_DB_ID, pixel_id=DEMO_PIXEL_ID, now=now)
        admin.create_token(uow, name="demo", db_ids=(DEMO_DB_ID,), value=DEMO_TOKEN, now=now)
    fields = uow.fields_of(DEMO_DB_ID)
    ids: dict[str, str] = {}
    for data in DEMO_PROFILES:
        found = uow.find_profiles(DEMO_DB_ID, "email", [data["email"]])
        ids[data["email"]] = (
            found[0]
            if found
            else profiles.create(
                uow,
                db_id=DEMO_DB_ID,
                data=profiles.clean_data(data, fields, DEMO_DB_ID, ""),
                fields=fields,
                now=now,
            )
        )
    return Demo(DEMO_DB_ID, DEMO_PIXEL_ID, DEMO_TOKEN, ids, created)


def example_body(demo: Demo) -> dict[str, Any]:
    return {
        "token": demo.token,
        "db_id": demo.db_id,
        "pixel_id": demo.pixel_id,
        "matching": "email",
        "email": "john@example.com",
        "goal": "purchase",
        "value": 49.9,
    }


def curl(demo: Demo, base_url: str) -> str:
    body = msgspec.json.encode(example_body(demo)).decode()
    return (
        f"curl -s {base_url}/api/v1.1/goals/register "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
