"""Late identity stitching (issue 4, item 5): events recorded without a profile (the ``record``
policy) keep their match key; when a profile comes to own that key, the events are attached to
it in the same transaction and, where they asked for ``enrich_profile``, their values are
replayed onto the profile.

The replay writes each event's system values with the event's own date through the same
newer-only field writes as registration (``enrich.profile_values``), so the profile ends up
exactly as if the events had matched it when they were registered: newer data (an import is
"now") is never overwritten by an older event.

Stitching is done in bulk (issue 11), for one profile (``profiles.save``, so also the ``create``
policy) as for a whole batch (``bulk.Plan``): one read of the waiting events per field (a
statement per 900 keys), one UPDATE per 900 events, and one multi-row newer-only field write
(``queries.write_fields_newer``, a statement per 1,000 rows) instead of one a field. Replaying
event by event, oldest first, left on each field the newest event's value (the later event on
equal dates) unless the profile held a newer one; so the rows are collapsed to that newest
value per (profile, field) first, and written newer-only with its date. "Oldest first" is by
(date, event id) over all the keys a profile gains at once: the order the events were
registered in, as if they had matched then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goalline.pipeline.enrich import profile_values
from goalline.storage.ports import UnitOfWork

#: Who owns which keys now: (match kind, profile field) → {key text: profile id}.
Owners = Mapping[tuple[str, str], Mapping[str, str]]


def attach_all(uow: UnitOfWork, *, db_id: int, fields: Mapping[str, str], owners: Owners) -> int:
    """Give every event of ``db_id`` waiting for a key of ``owners`` to the profile owning the
    key, and replay the enrichment of those registered with ``enrich_profile`` onto it; return
    how many events were attached. Keys of ``tags`` fields (as ``fields`` types them) are left
    out: tags never match events."""
    waiting: list[tuple[str, dict[str, Any]]] = []
    for (kind, field), by_key in owners.items():
        if by_key and fields.get(field) != "tags":
            found = uow.waiting_events(db_id=db_id, kind=kind, field=field, keys=list(by_key))
            waiting.extend((by_key[event["match_key"]], event) for event in found)
    if not waiting:
        return 0
    waiting.sort(key=lambda pair: (pair[1]["event_at"], pair[1]["id"]))  # oldest first
    uow.set_events_profile([(event["id"], profile_id) for profile_id, event in waiting])
    uow.write_fields_newer(replayed(waiting))
    return len(waiting)


def replayed(waiting: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str, str]]:
    """The field rows (profile_id, field, JSON value, the event's time) that replaying the
    enrichment of the (profile_id, event) pairs ``waiting``, oldest first, leaves: one row per
    (profile, field), from the newest event that writes it (the later one on equal dates)."""
    newest: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    for profile_id, event in waiting:
        if event["enrich_profile"]:
            for name, value in profile_values(event):
                newest[(profile_id, name)] = (profile_id, name, value, event["event_at"])
    return list(newest.values())
