"""Pages of ``GET /3/footprints`` and their ``Link: <...>; rel="next"`` header (PACT v3 section 5.6.1).

The host never returns more footprints than ``limit`` and MAY return fewer (this host caps a page at
``max_page``); when more remain it sends an RFC 8288 ``Link`` header with ``rel="next"`` whose target is
absolute, on the host the request named in its ``Host`` header, and valid for at least 180 seconds and
more than one call. The link here is the request's own URL with ``offset`` moved on: it holds no state, so
it stays valid as long as the footprints do (they only change by being deprecated, which keeps their place).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scope3lib.errors import InvalidFilter

T = TypeVar("T")

PAGING = ("limit", "offset")


def paging(params: Iterable[tuple[str, str]]) -> tuple[int | None, int]:
    """``(limit, offset)`` of a query (``limit`` None when not given); a value that is not a whole number
    of 0 or more is a 400 BadRequest (:class:`~scope3lib.errors.InvalidFilter`)."""
    found: dict[str, int] = {}
    for name, value in params:
        if name.lower() in PAGING:
            if not value.strip().isdigit():
                raise InvalidFilter(f"{name}: {value!r} is not a whole number of 0 or more")
            found[name.lower()] = int(value)
    return found.get("limit"), found.get("offset", 0)


def page(items: Sequence[T], limit: int | None, offset: int, max_page: int = 1000) -> tuple[list[T], int | None]:
    """``(the page, the offset of the next page or None)``: at most ``limit`` items and at most ``max_page``."""
    size = max_page if limit is None else min(limit, max_page)
    chosen = list(items[offset:offset + size])
    following = offset + size
    return chosen, (following if following < len(items) and size > 0 else None)


def next_link(request_url: str, next_offset: int) -> str:
    """The ``Link`` header's value pointing at the page from ``next_offset``: the request's absolute URL (as
    the server saw it, with the ``Host`` header's host) with the same filters and limit."""
    parts = urlsplit(request_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "offset"]
    target = urlunsplit(parts._replace(query=urlencode([*query, ("offset", str(next_offset))])))
    return f'<{target}>; rel="next"'
