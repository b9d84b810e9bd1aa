"""Late identity stitching (issue 4, item 5): events recorded without a profile (the ``record``
policy) keep their match key; when a profile comes to own that key, the events are attached to
it in the same transaction and, where they asked for ``enrich_profile``, their values are
replayed onto the profile.

The replay writes each event's system values with the event's own date through the same
newer-only field writes as ``register.enrich_profile``, so the profile ends up exactly as if the
events had matched it when they were registered: newer data (an import is "now") is never
overwritten by an older event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from goalline.model import PROFILE_ENRICHMENT
from goalline.storage import queries as q
from goalline.storage.store import Tx


def attach(
    tx: Tx, *, db_id: int, kind: str, field: str | None, keys: Iterable[str], profile_id: str
) -> int:
    """Give the events waiting for ``kind``/``field``/``keys`` to ``profile_id``; return how many.

    Events registered with ``enrich_profile`` have their values written onto the profile,
    oldest first, each only where the profile holds nothing newer.
    """
    waiting = q.waiting_events(tx, db_id=db_id, kind=kind, field=field, keys=list(keys))
    if not waiting:
        return 0
    q.set_events_profile(tx, [event["id"] for event in waiting], profile_id)
    for event in waiting:  # oldest first (ordered by event_at, id)
        if event["enrich_profile"]:
            replay_enrichment(tx, profile_id, event)
    return len(waiting)


def replay_enrichment(tx: Tx, profile_id: str, event: dict[str, Any]) -> None:
    """What ``register.enrich_profile`` would have written for ``event``, at its date."""
    values = dict(event)
    values["ip"] = event["client_ip"] or event["client_ip_v4"] or event["client_ip_v6"]
    for name, source in PROFILE_ENRICHMENT:
        value = values.get(source)
        if value is not None:
            q.write_field(tx, profile_id, name, value, event["event_at"], newer_only=True)
