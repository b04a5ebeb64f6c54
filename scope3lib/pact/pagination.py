"""The ``limit`` and ``offset`` of ``GET /3/footprints`` (PACT v3 section 5.6.1).

The host never returns more footprints than ``limit`` and MAY return fewer (this host caps a page at
``max_page``); when more remain it sends an RFC 8288 ``Link`` header with ``rel="next"`` whose target is
absolute, on the host the request named in its ``Host`` header, and valid for at least 180 seconds and
more than one call. The page and its link are :mod:`scope3lib.pages`'s: the link is the request's own URL
with ``offset`` moved on, holding no state, so it stays valid as long as the footprints do (they only change
by being deprecated, which keeps their place).
"""

from __future__ import annotations

from collections.abc import Iterable

from scope3lib.errors import InvalidFilter

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
