"""Demo data shared by ``goalline demo``, ``goalline serve --demo`` and the tests.

The demo lives in a store of its own: ``goalline-demo.db`` unless ``--database`` (or
``GOALLINE_DATABASE``) names another, so the real set-up that follows it in the README starts
on an empty ``goalline.db``. Its token is published, so ``seed`` refuses a store that holds any
database but the demo's: real profiles never share a store with a public token.
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass
from typing import Any

import msgspec

from goalline.model import Database, iso_utc
from goalline.pipeline import admin, profiles
from goalline.pipeline.context import hash_token
from goalline.storage.ports import Store, UnitOfWork

#: Where the demo's data goes unless a database is given: never the real default, goalline.db.
DEMO_DATABASE = "goalline-demo.db"
DEMO_DB_ID = 1
DEMO_DB_NAME = "Demo shop"
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


class NotADemoStore(admin.AdminError):
    """The store holds databases of its own: the demo (and its public token) stays out."""


@dataclass(frozen=True)
class Demo:
    db_id: int
    pixel_id: int
    token: str
    profiles: dict[str, str]  # email → profile_id
    created: bool


def seed(store: Store, where: str = "this store") -> Demo:
    """Create the demo database, fields, pixel, token and profiles once; later calls reuse them.
    A store whose databases are not the demo's is refused with NotADemoStore (``where`` names
    it in the message)."""
    return store.call(lambda uow: _seed(uow, where))


def _seed(uow: UnitOfWork, where: str) -> Demo:
    now = iso_utc(dt.datetime.now(dt.UTC))
    existing = uow.get_database(DEMO_DB_ID)
    created = existing is None
    if not _is_demo(uow, existing):
        others = ", ".join(f"{db.id} {db.name!r}" for db in uow.list_databases())
        raise NotADemoStore(
            f"{where} already holds databases ({others}): the demo, whose token is public, "
            "seeds only a store of its own. Leave out --database (and GOALLINE_DATABASE) to use "
            f"./{DEMO_DATABASE}, or name an empty store."
        )
    if created:
        admin.create_database(uow, name=DEMO_DB_NAME, db_id=DEMO_DB_ID, now=now)
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


def _is_demo(uow: UnitOfWork, existing: Database | None) -> bool:
    """Whether the store is the demo's: empty, or database 1 is the demo's, its token given."""
    if existing is None:
        return not uow.list_databases()
    return existing.name == DEMO_DB_NAME and uow.token_exists(hash_token(DEMO_TOKEN))


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
