"""Authorisation steps shared by every method: token → database → pixel (SPEC §1 codes)."""

from __future__ import annotations

from goalline.errors import Forbidden, NotFound, Unauthorized
from goalline.model import TokenInfo
from goalline.storage import queries as q
from goalline.storage.store import Tx


def authenticate(tx: Tx, token_hash: str) -> TokenInfo:
    token = q.token_by_hash(tx, token_hash)
    if token is None:
        raise Unauthorized("token: unknown API token")
    return token


def authorise_database(tx: Tx, token_hash: str, db_id: int) -> tuple[TokenInfo, str]:
    """The token and the database's unknown-profile policy; 401, 403 or 404 otherwise.

    A scoped token asking for a database outside its scope gets 403 whether or not the
    database exists, so tokens cannot probe for other databases.
    """
    token = authenticate(tx, token_hash)
    if not token.may_use(db_id):
        raise Forbidden(f"db_id: token {token.name!r} may not use database {db_id}")
    database = q.get_database(tx, db_id)
    if database is None:
        raise NotFound(f"db_id: database {db_id} not found")
    return token, database[2]


def authorise_pixel(tx: Tx, pixel_id: int, db_id: int) -> None:
    pixel = q.get_pixel(tx, pixel_id)
    if pixel is None:
        raise NotFound(f"pixel_id: pixel {pixel_id} not found")
    if pixel[2] is not None and pixel[2] != db_id:
        raise Forbidden(f"pixel_id: pixel {pixel_id} belongs to database {pixel[2]}, not {db_id}")
