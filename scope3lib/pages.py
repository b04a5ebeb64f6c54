"""Pages of a list and the ``Link: <...>; rel="next"`` header (RFC 8288) that points at the next one.

Used by the REST API (opaque cursors) and the PACT host (``offset``, PACT v3 section 5.6.1) alike: a next link
is the request's own absolute URL, as the server saw it (with the ``Host`` header's host), with the same
filters and only the paging parameters changed, so it holds no state and can be called more than once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

T = TypeVar("T")


def page(items: Sequence[T], limit: int | None, offset: int, max_page: int = 1000) -> tuple[list[T], int | None]:
    """``(the page, the offset of the next page or None)``: at most ``limit`` items and at most ``max_page``."""
    size = max_page if limit is None else min(limit, max_page)
    chosen = list(items[offset:offset + size])
    following = offset + size
    return chosen, (following if following < len(items) and size > 0 else None)


def next_link(request_url: str, **params: object) -> str:
    """The ``Link`` header's value pointing at the next page: ``request_url`` with ``params`` set in its query
    (after the others, replacing any of the same name in any letter case, as PACT reads names)."""
    parts = urlsplit(request_url)
    names = {name.lower() for name in params}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in names]
    query = urlencode([*kept, *((name, str(value)) for name, value in params.items())])
    return f'<{urlunsplit(parts._replace(query=query))}>; rel="next"'
