"""Many profiles in one unit of work: what ``profiles/import_batch`` and ``goalline import
profiles`` share (issue 4).

Each item is matched and created or updated exactly like ``profiles/import``, but the batch is
planned in memory before anything is written:

1. every item is checked and cleaned against the database's fields, read once per batch
   (pure, so ``profiles/import_batch`` runs it off the event loop before the unit of work, and
   the CLI checks the next batch while the store writes this one);
2. the owners of every key the batch matches by or makes unique (emails, phones, the custom
   matching field) are read with a few ``IN (...)`` queries;
3. the items are planned in order against that picture, which each planned item updates, so a
   later item sees what an earlier one did (the same email twice: created, then updated; an
   email taken by an earlier item: 409). A refused item is left out of the picture;
4. the plan is written with multi-row statements: profiles, keys, stitched events, fields.

A bad item is refused before anything of it is written, so it never fails the others, and no
per-item savepoint is needed: item writes cannot fail one by one. (Per-item savepoints cost two
statements an item and forbid multi-row writes; the plan is what makes a batch fast.) If a
concurrent writer takes a unique key between the reads and the writes (PostgreSQL only: SQLite
has one writer), the key insert sees it and the unit of work runs again (``Retry``) against the
new state.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from goalline.errors import ApiError, InvalidRequest, success
from goalline.model import MatchKey
from goalline.pipeline import dedupe, fastpath, match, profiles, stitch
from goalline.pipeline.auth import authorise_database
from goalline.pipeline.context import Context, Deps
from goalline.pipeline.profiles import MAX_PHONES, clean_data, index_keys
from goalline.pipeline.requests import MatchFields, ProfileImportBatchRequest
from goalline.pipeline.validate import check_string, required_id
from goalline.storage.ports import Retry, UnitOfWork

#: The profile fields whose keys belong to one profile only (storage's unique index).
UNIQUE_FIELDS = ("email", "phones")
IDENTIFIERS = ("email", "phone", "profile_id", "field_name", "field_value")
#: Most items in one batch: the default of the ``max_batch_items`` setting (the handler passes
#: the setting's value).
MAX_ITEMS = 10_000
_ENCODE = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome, in item order."""

    profile_id: str | None = None
    created: bool = False
    error: ApiError | None = None

    def reply(self) -> dict[str, Any]:
        """Altcraft's batch result item ``{error, error_text, profile_id}``."""
        if self.error is not None:
            return self.error.envelope()
        return success({"profile_id": self.profile_id})


@dataclass(frozen=True)
class Item:
    """A checked item: its match key, the data the key implies, and its clean data."""

    index: int
    flat: bool
    key: MatchKey
    #: Text keys searched under ``key.field`` (several for a tags field).
    texts: tuple[str, ...]
    implied: dict[str, Any]
    data: dict[str, Any]
    #: Every field of ``implied`` and ``data`` as the JSON text stored (encoded while checking,
    #: which the CLI does beside the writes).
    encoded: dict[str, str]


@dataclass
class Planned:
    """What the batch writes for one profile (the last item to touch a field wins)."""

    created: bool
    #: field name → value as JSON text
    fields: dict[str, str] = field(default_factory=dict)
    #: field name → (match kind, keys): the profile's whole index for that field.
    keys: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """A batch after the pure checks: the items to plan, and the refused ones by index."""

    size: int
    items: list[Item]
    errors: dict[int, ApiError]


def check_items(
    items: Sequence[Any],
    *,
    fields: dict[str, str],
    db_id: int,
    matching: str,
    field_name: str | None,
    phone_region: str,
) -> Checked:
    """Check every item against the database's ``fields`` (pure: no storage needed, so the
    CLI checks the next batch while the store writes this one)."""
    good: list[Item] = []
    errors: dict[int, ApiError] = {}
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            errors[index] = InvalidRequest.field(f"data[{index}]", "must be an object")
            continue
        try:
            good.append(check_item(index, raw, fields, db_id, matching, field_name, phone_region))
        except ApiError as exc:
            errors[index] = at_item(exc, index, _is_flat(raw))
    return Checked(len(items), good, errors)


def apply_items(
    uow: UnitOfWork, *, db_id: int, fields: dict[str, str], checked: Checked, now: str
) -> list[ItemResult]:
    """Plan and write checked items in ``uow``; one result per item, in item order."""
    results: dict[int, ItemResult] = {i: ItemResult(error=e) for i, e in checked.errors.items()}
    plan = Plan(uow, db_id, fields, checked.items)
    for item in checked.items:
        try:
            results[item.index] = plan.add(item)
        except ApiError as exc:
            results[item.index] = ItemResult(error=at_item(exc, item.index, item.flat))
    plan.write(uow, now)
    return [results[i] for i in range(checked.size)]


# -- checking one item (pure) -----------------------------------------------------------------


def check_item(
    index: int,
    raw: dict[str, Any],
    fields: dict[str, str],
    db_id: int,
    matching: str,
    field_name: str | None,
    phone_region: str,
) -> Item:
    """Split, clean and key one item; errors carry paths relative to the item."""
    ident, data, flat = split_item(raw, fields)
    for name in ("email", "phone", "profile_id", "field_name"):
        value = ident.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidRequest.field(name, "must be a string")
            check_string(name, value)
    clean = clean_fast(data, fields, db_id, phone_region)
    key, texts, implied = item_key(ident, clean, fields, db_id, matching, field_name, phone_region)
    encoded = {name: _json(value) for name, value in {**implied, **clean}.items()}
    return Item(index, flat, key, texts, implied, clean, encoded)


def clean_fast(
    data: dict[str, Any], fields: dict[str, str], db_id: int, phone_region: str
) -> dict[str, Any]:
    """``profiles.clean_data`` with the fast paths for plain emails and phones; anything the
    fast paths do not vouch for (and every error) goes through ``clean_data`` itself."""
    fast: dict[str, Any] = {}
    email = data.get("email")
    if isinstance(email, str) and (normal := fastpath.email(email)) is not None:
        fast["email"] = normal
    phones = data.get("phones")
    items = [phones] if isinstance(phones, str) else phones
    if isinstance(items, list) and len(items) <= MAX_PHONES:
        normalised = [
            fastpath.phone(number, phone_region) if isinstance(number, str) else None
            for number in items
        ]
        if None not in normalised:
            fast["phones"] = list(dict.fromkeys(normalised))
    if not fast:
        return clean_data(data, fields, db_id, phone_region)
    rest = {name: value for name, value in data.items() if name not in fast}
    return {**clean_data(rest, fields, db_id, phone_region), **fast}


def split_item(
    raw: dict[str, Any], fields: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(identifiers, profile data, flat?): an item without a ``data`` object is its own data,
    except for the identifier fields that are no profile field (``phone``, ``profile_id``,
    ``field_name``, ``field_value``, unless the database has a custom field so named).

    In XML every ``<data>`` is read as an array, so an item's own ``data`` arrives as a list
    holding one object; that is unwrapped here.
    """
    inner = raw.get("data")
    if isinstance(inner, list) and len(inner) <= 1 and all(isinstance(d, dict) for d in inner):
        inner = inner[0] if inner else None
    if inner is None:
        lifted = {k for k in IDENTIFIERS if k != "email" and k not in fields} | {"data"}
        ident = {k: raw[k] for k in lifted & raw.keys()}
        return ident, {k: v for k, v in raw.items() if k not in lifted}, True
    if not isinstance(inner, dict):
        raise InvalidRequest.field("data", "must be an object")
    return {k: raw.get(k) for k in IDENTIFIERS}, inner, False


def item_key(
    ident: dict[str, Any],
    data: dict[str, Any],
    fields: dict[str, str],
    db_id: int,
    matching: str,
    field_name: str | None,
    phone_region: str,
) -> tuple[MatchKey, tuple[str, ...], dict[str, Any]]:
    """The item's match key (``match.match_key``, the identifier read from the item's clean
    data when the item does not give it), its text keys, and the data the key implies for a
    new profile."""
    raw_value = ident.get("field_value")
    if raw_value is not None and (
        isinstance(raw_value, bool) or not isinstance(raw_value, (str, int, float))
    ):
        raise InvalidRequest.field("field_value", "must be a string or a number")
    given = MatchFields(
        matching=matching,
        email=ident.get("email"),
        phone=ident.get("phone"),
        profile_id=ident.get("profile_id"),
        field_name=ident.get("field_name") or field_name,
        field_value=raw_value,
    )
    key = match.match_key(given, phone_region=phone_region, data=data, clean=True)
    texts = tuple(match.key_texts_for(key, fields, db_id))
    return key, texts, profiles.data_from_key(key, fields)


def at_item(exc: ApiError, index: int, flat: bool) -> ApiError:
    """``exc`` with its path made absolute: ``data[3].email``, or ``data[3].data.email`` for
    a field of an item's ``data`` object (a flat item's data is the item itself)."""
    text = exc.text
    if flat and text.startswith("data."):
        text = text[len("data.") :]
    return type(exc)(f"data[{index}].{text}", retry_after=exc.retry_after)


def _json(value: Any) -> str:
    return _ENCODE(value).decode()


def _is_flat(raw: dict[str, Any]) -> bool:
    return raw.get("data") in (None, [])


# -- planning against the database's picture --------------------------------------------------


class Plan:
    """The batch's writes, planned item by item against the keys the batch mentions."""

    def __init__(
        self, uow: UnitOfWork, db_id: int, fields: dict[str, str], items: list[Item]
    ) -> None:
        self.db_id = db_id
        self.fields = fields
        self.profiles: dict[str, Planned] = {}
        #: (field, key) → profiles holding it, for every key the batch looks up or must keep
        #: unique; ``held`` is the same picture by profile, to drop a profile's old keys.
        self.owners: dict[tuple[str, str], set[str]] = {}
        self.held: dict[str, dict[str, set[str]]] = {}
        self.tracked = set(UNIQUE_FIELDS)
        mentioned: dict[str, set[str]] = {name: set() for name in UNIQUE_FIELDS}
        wanted_ids: list[str] = []
        for item in items:
            if item.key.kind == "profile_id":
                wanted_ids.append(item.key.value)
            else:
                assert item.key.field is not None
                self.tracked.add(item.key.field)
                mentioned.setdefault(item.key.field, set()).update(item.texts)
            for name in UNIQUE_FIELDS:
                value = item.data.get(name)
                if value is not None:
                    mentioned[name].update([value] if isinstance(value, str) else value)
        for item in items:  # a custom matching field's values set by other items' data
            for name in self.tracked - set(UNIQUE_FIELDS):
                if name in item.data:
                    mentioned[name].update(match.key_texts(fields[name], item.data[name]))
        for name, keys in mentioned.items():
            for key, profile_id in uow.key_owners(db_id, name, list(keys)) if keys else ():
                self.owners.setdefault((name, key), set()).add(profile_id)
                self.held.setdefault(profile_id, {}).setdefault(name, set()).add(key)
        self.known_ids = uow.profiles_in_database_of(db_id, wanted_ids) if wanted_ids else set()
        self._random = os.urandom(8 * len(items)).hex()
        self._created = 0

    def new_id(self) -> str:
        """``profiles.new_profile_id``'s shape (time, then 64 random bits), from one
        ``os.urandom`` call per batch instead of one per profile."""
        start, self._created = 16 * self._created, self._created + 1
        return f"{int(time.time()):08x}{self._random[start : start + 16]}"

    def add(self, item: Item) -> ItemResult:
        """Plan one item: resolve, check its unique keys, then record its writes."""
        profile_id = self.resolve(item)
        created = profile_id is None
        data = {**item.implied, **item.data} if created else item.data
        profile_id = profile_id or self.new_id()
        indexed = index_keys(self.fields, data)
        for _, name, keys in indexed:
            if name in UNIQUE_FIELDS:
                for key in keys:
                    others = self.owners.get((name, key), set()) - {profile_id}
                    if others:
                        raise profiles.key_taken(self.db_id, name, min(others))
        planned = self.profiles.setdefault(profile_id, Planned(created=created))
        for kind, name, keys in indexed:
            planned.keys[name] = (kind, list(dict.fromkeys(keys)))
            if name in self.tracked:
                held = self.held.setdefault(profile_id, {})
                for old in held.get(name, ()):
                    self.owners[(name, old)].discard(profile_id)
                for key in keys:
                    self.owners.setdefault((name, key), set()).add(profile_id)
                held[name] = set(keys)
        if created:
            planned.fields.update(item.encoded)
        else:
            planned.fields.update((name, item.encoded[name]) for name in data)
        return ItemResult(profile_id=profile_id, created=created)

    def resolve(self, item: Item) -> str | None:
        """The one profile the item's key names, as ``profiles.resolve`` would answer."""
        key = item.key
        if key.kind == "profile_id":
            if key.value in self.known_ids:
                return key.value
            raise profiles.no_profile_id(self.db_id, key.value)
        assert key.field is not None
        found = set.intersection(*(self.owners.get((key.field, t), set()) for t in item.texts))
        if len(found) > 1:
            raise profiles.ambiguous(self.db_id, key, sorted(found))
        return next(iter(found), None)

    # -- writing ------------------------------------------------------------------------------

    def write(self, uow: UnitOfWork, now: str) -> None:
        """Write the plan: profiles, keys, stitched events, then fields (as ``profiles.save``).

        Rows go in index order, which makes SQLite's B-tree inserts noticeably cheaper.
        """
        ordered = sorted(self.profiles.items())
        created = [p for p, planned in ordered if planned.created]
        updated = [p for p, planned in ordered if not planned.created]
        uow.insert_profiles(self.db_id, created, now)
        unchanged = self.unchanged_keys(uow, updated)
        reindexed: dict[str, list[str]] = {}
        for profile_id in updated:
            for name in self.profiles[profile_id].keys:
                if (profile_id, name) not in unchanged:
                    reindexed.setdefault(name, []).append(profile_id)
        for name, profile_ids in reindexed.items():
            uow.drop_keys_of(name, profile_ids)
        rows = sorted(
            (self.db_id, name, key, profile_id)
            for profile_id, planned in ordered
            for name, (_, keys) in planned.keys.items()
            if (profile_id, name) not in unchanged
            for key in keys
        )
        if uow.insert_keys(rows) != len(rows):
            raise Retry()  # a concurrent writer took a unique key after we read the owners
        self.stitch(uow)
        uow.write_fields(
            [
                (profile_id, name, text, now)
                for profile_id, planned in ordered
                for name, text in sorted(planned.fields.items())
            ],
        )
        uow.touch_profiles(updated, now)

    def unchanged_keys(self, uow: UnitOfWork, updated: list[str]) -> set[tuple[str, str]]:
        """(profile, field) pairs whose index the plan leaves as it is: not rewritten, so a
        second import of the same file writes no keys at all."""
        held: dict[tuple[str, str], set[str]] = {}
        for profile_id, name, key in uow.keys_of_profiles(updated) if updated else ():
            held.setdefault((profile_id, name), set()).add(key)
        return {
            (profile_id, name)
            for profile_id in updated
            for name, (_, keys) in self.profiles[profile_id].keys.items()
            if held.get((profile_id, name), set()) == set(keys)
        }

    def stitch(self, uow: UnitOfWork) -> None:
        """Attach the events waiting for any key the batch indexed, all in one go (issue 11)."""
        if not self.profiles or not uow.any_waiting(self.db_id):
            return
        owners: dict[tuple[str, str], dict[str, str]] = {}
        for profile_id, planned in self.profiles.items():
            for name, (kind, keys) in planned.keys.items():
                owners.setdefault((kind, name), {}).update(dict.fromkeys(keys, profile_id))
        stitch.attach_all(uow, db_id=self.db_id, fields=self.fields, owners=owners)


# -- profiles/import_batch --------------------------------------------------------------------


async def handle_import_batch(
    deps: Deps, ctx: Context, req: ProfileImportBatchRequest
) -> dict[str, Any]:
    db_id, items, matching = check_batch(req, max_items=deps.settings.max_batch_items)
    token_hash = ctx.token_hash()
    region = deps.settings.default_phone_region
    now = ctx.now_iso

    def check(fields: dict[str, str]) -> Checked:
        if req.field_name is not None and req.field_name not in fields:
            raise InvalidRequest.field(
                "field_name", f"database {db_id} has no field {req.field_name!r}"
            )
        return check_items(
            items,
            fields=fields,
            db_id=db_id,
            matching=matching,
            field_name=req.field_name,
            phone_region=region,
        )

    def read(uow: UnitOfWork) -> dict[str, str]:
        authorise_database(uow, token_hash, db_id)
        return uow.fields_of(db_id)

    # The pure checks (most of the CPU time) run before the unit of work, off the event loop,
    # so the write transaction holds the lock only for planning and writing.
    fields = await deps.store.read(read)
    checked = await asyncio.to_thread(check, fields)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        authorise_database(uow, token_hash, db_id)
        current = uow.fields_of(db_id)
        again = checked if current == fields else check(current)  # a field added meanwhile
        results = apply_items(uow, db_id=db_id, fields=current, checked=again, now=now)
        return {"result": [r.reply() for r in results]}

    return await deps.store.write(lambda uow: dedupe.once(uow, ctx.guard, work), large=True)


def check_batch(
    req: ProfileImportBatchRequest, *, max_items: int = MAX_ITEMS
) -> tuple[int, list[Any], str]:
    """The batch-wide rules: a failure here refuses the whole request."""
    db_id = required_id(req.db_id, "db_id")
    if req.data is None:
        raise InvalidRequest.field("data", "required: an array of profiles")
    if len(req.data) > max_items:
        raise InvalidRequest.field("data", f"more than {max_items} items")
    matching = req.matching or "email"
    if matching not in match.MATCHING_MODES:
        raise InvalidRequest.field("matching", f"must be one of {', '.join(match.MATCHING_MODES)}")
    if req.field_name is not None:
        check_string("field_name", req.field_name)
    return db_id, req.data, matching
