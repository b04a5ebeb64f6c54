"""The list filters of PACT v3 ``GET /3/footprints`` and of a RequestCreated event's criteria.

Semantics (PACT Technical Specifications v3.0.3, sections 5.6.2 and 5.6.3, and section 7.3 for the validity
period), checked against the conformance service's test cases 20 to 39:

* ``productId``, ``companyId``, ``classification``: the footprint lists the value in ``productIds``,
  ``companyIds``, ``productClassifications``; ``geography``: the value is the footprint's
  ``geographyRegionOrSubregion``, ``geographyCountry`` or ``geographyCountrySubdivision`` (exactly: ``DE``
  does not select ``DE-BW``, because the conformance service checks equality); ``status``: Active or
  Deprecated. All comparisons ignore case, values and parameter names alike (the spec's own example writes
  ``productid`` and ``validon``).
* ``validOn``: start <= validOn <= end; ``validAfter``: start > validAfter; ``validBefore``: end < validBefore,
  where (start, end) is the validity period, by default 3 years from ``pcf.referencePeriodEnd``.
* Values of one parameter are ORed, parameters are ANDed. A value nothing has (an unknown product, a status
  ``Bogus``) selects nothing: an empty list, not an error (conformance test case 37); an empty value is no
  criterion. A date that is not a date is an error (:class:`~scope3lib.errors.InvalidFilter`, a 400
  BadRequest).

The matching runs on a frame (:func:`footprint_frame`, one row per footprint), so a database layer can hand
over its own rows with the same columns; :func:`select` does it for a list of footprints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from scope3lib.errors import InvalidFilter
from scope3lib.pact.model import ProductFootprint, parse_date_time, show

LIST_FILTERS = ("productId", "companyId", "geography", "classification", "status")
DATE_FILTERS = ("validOn", "validAfter", "validBefore")
FILTERS = LIST_FILTERS + DATE_FILTERS
_BY_LOWER_NAME = {name.lower(): name for name in FILTERS}

# One row per footprint; list columns hold lower-cased tuples, the validity columns UTC timestamps.
COLUMNS = ("id", "status", "productIds", "companyIds", "productClassifications", "geographies", "validFrom",
           "validUntil")


@dataclass(frozen=True)
class FootprintFilter:
    """The criteria of a footprint list or request; an empty filter selects every footprint."""

    productId: tuple[str, ...] = ()
    companyId: tuple[str, ...] = ()
    geography: tuple[str, ...] = ()
    classification: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    validOn: datetime | None = None
    validAfter: datetime | None = None
    validBefore: datetime | None = None

    @classmethod
    def from_query(cls, params: Iterable[tuple[str, str]]) -> FootprintFilter:
        """From a query string's ``(name, value)`` pairs, repeated names included (Starlette's
        ``request.query_params.multi_items()``). Other parameters (``limit``, ``x-...``) are not filters."""
        values: dict[str, list[str]] = {}
        for name, value in params:
            spec_name = _BY_LOWER_NAME.get(name.lower())
            if spec_name is not None:
                values.setdefault(spec_name, []).append(value)
        return cls._build(values)

    @classmethod
    def from_criteria(cls, data: Mapping[str, Any], where: str = "data") -> FootprintFilter:
        """From a RequestCreated event's ``data`` (lists of strings, ``status`` and dates as strings)."""
        values: dict[str, list[str]] = {}
        for name in FILTERS:
            value = data.get(name)
            if value is None:
                continue
            listed = value if isinstance(value, list) else [value]
            if (name in DATE_FILTERS and len(listed) != 1) or not all(isinstance(v, str) for v in listed):
                expected = "a date-time string" if name in DATE_FILTERS else "a list of strings"
                raise InvalidFilter(f"{where}.{name}: {show(value)} is not {expected}")
            values[name] = listed
        return cls._build(values, where + ".")

    @classmethod
    def _build(cls, given_values: Mapping[str, list[str]], where: str = "") -> FootprintFilter:
        # An empty value is no criterion: the conformance service sends ``?geography=`` for a global footprint
        # and expects every footprint back (test cases 22 and 23).
        values = {name: [v for v in listed if v.strip()] for name, listed in given_values.items()}
        found: dict[str, Any] = {name: tuple(values[name]) for name in LIST_FILTERS if values.get(name)}
        for name in DATE_FILTERS:
            given = values.get(name, [])
            if len(given) > 1:
                raise InvalidFilter(f"{where}{name} is given {len(given)} times; give it once")
            if given:
                found[name] = filter_date(given[0], where + name)
        return cls(**found)

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def to_query(self) -> list[tuple[str, str]]:
        """The filter as query parameters again, for a pagination link."""
        pairs = [(name, value) for name in LIST_FILTERS for value in getattr(self, name)]
        return pairs + [(name, _text(getattr(self, name))) for name in DATE_FILTERS if getattr(self, name)]


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def filter_date(text: str, name: str) -> datetime:
    """A date-time of a query; a bare date is midnight UTC, and a ``+`` that the query string turned into a
    space (an unencoded ``+01:00``) is read as the ``+`` it was."""
    text = text.strip()
    if len(text) == 10:
        text += "T00:00:00Z"
    if " " in text and "T" in text:
        text = text.replace(" ", "+")
    try:
        return parse_date_time(text)
    except ValueError as error:
        raise InvalidFilter(f"{name}: {error}") from None


def footprint_frame(footprints: Iterable[ProductFootprint]) -> pd.DataFrame:
    """The columns :func:`mask` filters on, one row per footprint, in order."""
    rows = []
    for fp in footprints:
        start, end = fp.validity()
        geographies = (fp.pcf.geographyRegionOrSubregion, fp.pcf.geographyCountry, fp.pcf.geographyCountrySubdivision)
        rows.append((fp.id, fp.status.lower(), _lower(fp.productIds), _lower(fp.companyIds),
                     _lower(fp.productClassifications or []), _lower(g for g in geographies if g),
                     pd.Timestamp(start).tz_convert(UTC), pd.Timestamp(end).tz_convert(UTC)))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _lower(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v.lower() for v in values)


def _lists_hit(column: pd.Series, wanted: tuple[str, ...]) -> pd.Series:
    """Rows whose list holds at least one wanted value (OR within a parameter)."""
    exploded = column.explode()
    hit = exploded.isin(set(_lower(wanted)))
    return hit.groupby(level=0, sort=False).any().reindex(column.index, fill_value=False).astype(bool)


def mask(frame: pd.DataFrame, flt: FootprintFilter) -> pd.Series:
    """True for the rows of ``frame`` (columns :data:`COLUMNS`) that ``flt`` selects (AND across parameters)."""
    rows = frame.reset_index(drop=True)
    keep = pd.Series(True, index=rows.index)
    for name, column in (("productId", "productIds"), ("companyId", "companyIds"),
                         ("classification", "productClassifications"), ("geography", "geographies")):
        if getattr(flt, name):
            keep &= _lists_hit(rows[column], getattr(flt, name))
    if flt.status:
        keep &= rows["status"].isin(set(_lower(flt.status)))
    if flt.validOn is not None:
        on = pd.Timestamp(flt.validOn).tz_convert(UTC)
        keep &= (rows["validFrom"] <= on) & (on <= rows["validUntil"])
    if flt.validAfter is not None:
        keep &= rows["validFrom"] > pd.Timestamp(flt.validAfter).tz_convert(UTC)
    if flt.validBefore is not None:
        keep &= rows["validUntil"] < pd.Timestamp(flt.validBefore).tz_convert(UTC)
    return pd.Series(keep.to_numpy(dtype=bool), index=frame.index)


def select(footprints: Sequence[ProductFootprint], flt: FootprintFilter) -> list[ProductFootprint]:
    """The footprints ``flt`` selects, in their order."""
    if not footprints or flt.is_empty():
        return list(footprints)
    keep = mask(footprint_frame(footprints), flt)
    return [fp for fp, kept in zip(footprints, keep, strict=True) if kept]
