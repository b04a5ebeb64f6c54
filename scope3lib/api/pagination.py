"""Cursor pagination: stable order, an opaque cursor, and ``Link: <...>; rel="next"``.

Lists are ordered by a unique key (an id, or a time and an id); the cursor is the last key returned,
base64url-encoded JSON, so a page never repeats or skips a row when rows are added meanwhile. The body
carries ``next_cursor`` too, for clients that ignore headers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from .. import pages
from .problems import ApiProblem

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1-1000).")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, types: tuple[type, ...]) -> list[Any] | None:
    """The key in ``cursor`` (None for the first page), its parts checked against ``types``."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, list) or len(key) != len(types) or not all(
            isinstance(k, t) and not isinstance(k, bool) for k, t in zip(key, types, strict=True)):
        raise ApiProblem(422, "Invalid input", "cursor is not one this API issued: use next_cursor as returned",
                         field="query.cursor")
    return key


def page(request: Request, response: Response, rows: list[dict[str, Any]], limit: int,
         key_of: Any) -> dict[str, Any]:
    """The page of ``rows`` (fetched with ``limit + 1``), with the Link header when there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    return _linked(request, response, rows, limit, encode(key_of(rows[-1])) if more and rows else None)


def frame_page(request: Request, response: Response, records: list[dict[str, Any]], limit: int,
               cursor: str | None) -> dict[str, Any]:
    """A page of a list the library computes (estimates, hotspots): the cursor is a position in its order,
    which is stable while the data behind it does not change."""
    rows, following = pages.page(records, limit, (decode(cursor, (int,)) or [0])[0])
    return _linked(request, response, rows, limit, None if following is None else encode([following]))


def _linked(request: Request, response: Response, rows: list[dict[str, Any]], limit: int,
            cursor: str | None) -> dict[str, Any]:
    """The body of a :class:`Page`, and its Link header when there is a next page."""
    if cursor is not None:
        response.headers["Link"] = pages.next_link(str(request.url), limit=limit, cursor=cursor)
    return {"items": rows, "next_cursor": cursor}


def json_page(cur: psycopg.Cursor[Any], select_sql: str, params: dict[str, Any], limit: int) -> tuple[str, str | None]:
    """A page built as JSON by PostgreSQL itself (``json_agg``): the hot lists skip a Python object per row.

    ``select_sql`` (psycopg's ``%(name)s`` parameters) selects the rows in ``id`` order with ``LIMIT %(n)s``
    (``n`` = ``limit + 1``, to know whether there is a next page). Returns the body, in the shape of
    :class:`Page`, and the next page's cursor (None on the last page).
    """
    cur.execute(
        f"WITH page AS ({select_sql}), shown AS (SELECT * FROM page ORDER BY id LIMIT %(limit)s) "
        "SELECT coalesce((SELECT json_agg(s ORDER BY s.id)::text FROM shown s), '[]'), "
        "(SELECT count(*) FROM page), (SELECT max(id) FROM shown)", {**params, "limit": limit})
    row = cur.fetchone()
    assert row is not None
    items, fetched, last = row
    cursor = encode([int(last)]) if fetched > limit else None
    return f'{{"items":{items},"next_cursor":{json.dumps(cursor)}}}', cursor
