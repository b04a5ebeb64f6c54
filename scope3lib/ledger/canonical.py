"""Canonical JSON of ledger leaves: the exact bytes an auditor hashes to check a leaf (one change to an entry)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

#: The events a leaf records (the database refuses any other).
EVENTS = ("create", "correct", "recalculate", "delete", "approve", "reject")



# --- canonical JSON ------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON value; PostgreSQL's ``ledger_canonical`` produces the same.

    The form follows RFC 8785 (JSON Canonicalization Scheme) except for numbers:

    * no whitespace; object members sorted by key in Unicode code point order (for the ASCII keys the
      ledger uses this is also RFC 8785's UTF-16 order); members whose value is null are **omitted**
      at every depth (so adding a nullable column to ``emission_entries`` leaves the canonical form
      of existing entries unchanged); null array elements stay ``null``;
    * strings as JSON strings in UTF-8, escaping only ``"``, ``\\`` and control characters below
      U+0020 (``\\b \\t \\n \\f \\r`` by name, the rest as ``\\u00xx`` in lower-case hex), as RFC 8785;
    * numbers in plain positional notation, never an exponent: integers as themselves; a double
      (PostgreSQL ``double precision``, Python ``float``) as PostgreSQL's ``float8out`` prints it
      with ``extra_float_digits`` >= 1: the shortest decimal lying strictly inside the interval of
      reals that round to that double (see :func:`_double_digits`); a decimal (``numeric``,
      :class:`~decimal.Decimal`) exactly; in both cases without trailing fractional zeros or a
      trailing point, and ``0`` for negative zero. For doubles in [1e-6, 1e21) this is RFC 8785's
      (ECMAScript) form except for the rare doubles (about 1 in 2,000) whose shortest digits lie
      exactly on the interval's bound, where PostgreSQL, and so the ledger, uses one digit more.
      NaN and the infinities,
      which JSON lacks, become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as
      PostgreSQL's ``to_jsonb`` does);
    * dates as ``YYYY-MM-DD``; timestamps as PostgreSQL's JSON form: ISO 8601 with ``T``, fractional
      seconds only when non-zero and without trailing zeros, and for aware timestamps the UTC offset
      ``+00:00`` after conversion to UTC.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int | float | Decimal):
        out.append(format_number(value))
    elif isinstance(value, dt.datetime):
        out.append(json.dumps(_timestamp_text(value)))
    elif isinstance(value, dt.date):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, Mapping):
        members = []
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be strings, got {key!r}")
            if value[key] is None:
                continue
            parts: list[str] = [json.dumps(key, ensure_ascii=False), ":"]
            _encode(value[key], parts)
            members.append("".join(parts))
        out.append("{" + ",".join(members) + "}")
    elif isinstance(value, list | tuple):
        items = []
        for item in value:
            parts = []
            _encode(item, parts)
            items.append("".join(parts))
        out.append("[" + ",".join(items) + "]")
    else:
        raise TypeError(f"no canonical JSON form for {type(value).__name__}: {value!r}")


def format_number(x: int | float | Decimal) -> str:
    """A number as canonical JSON (see :func:`canonical_json`); non-finite values as JSON strings."""
    if isinstance(x, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return '"NaN"' if math.isnan(x) else ('"Infinity"' if x > 0 else '"-Infinity"')
        d = _double_digits(x)
    else:
        d = x
        if not d.is_finite():
            return '"NaN"' if d.is_nan() else ('"Infinity"' if d > 0 else '"-Infinity"')
    s = format(d, "f")  # exact: no rounding to the context's precision, unlike Decimal.normalize()
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _double_digits(x: float) -> Decimal:
    """The decimal PostgreSQL prints for the double ``x`` (float8out, extra_float_digits >= 1).

    PostgreSQL uses Ryu (src/common/d2s.c) built without ``STRICTLY_SHORTEST``, so a candidate on a
    bound of the rounding interval is never accepted, while Python's ``repr`` (David Gay's shortest
    mode, like ECMAScript) accepts the bound when the double's mantissa is even. They differ only
    when ``repr``'s digits lie exactly on a bound: e.g. 5.5766562036487056e+16, which ``repr``
    writes 5.576656203648706e+16, the midpoint between it and the next double.
    """
    d = Decimal(repr(x))
    if x == 0:
        return d
    exact = Fraction(x)
    below, above = math.nextafter(x, -math.inf), math.nextafter(x, math.inf)
    gap = abs(Fraction(below if math.isfinite(below) else above) - exact)  # beyond the largest double: its ulp
    lo = (exact + Fraction(below)) / 2 if math.isfinite(below) else exact - gap / 2
    hi = (exact + Fraction(above)) / 2 if math.isfinite(above) else exact + gap / 2
    if lo < Fraction(d) < hi:
        return d
    for digits in range(len(d.as_tuple().digits), 18):  # 17 significant digits always round-trip
        c = Decimal(format(x, f".{digits - 1}e"))  # correctly rounded from the exact binary value
        unit = Decimal((0, (1,), c.adjusted() - digits + 1))
        inside = [v for v in (c, c - unit, c + unit) if lo < Fraction(v) < hi]
        if inside:
            return min(inside, key=lambda v: abs(Fraction(v) - exact))
    raise AssertionError(f"no decimal of at most 17 digits inside the rounding interval of {x!r}")


def _timestamp_text(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + ("+00:00" if value.tzinfo is not None else "")


def recorded_at_text(value: dt.datetime) -> str:
    """A leaf's ``recorded_at``: UTC with exactly six fractional digits and ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_data(*, tenant_id: int, leaf_index: int, entry_id: int, event: str, actor: str, reason: str | None,
              recorded_at: dt.datetime, entry: Mapping[str, Any]) -> bytes:
    """The bytes of one leaf, as the database's ``ledger_leaf_data`` writes them.

    A canonical JSON object with ``actor`` (the PostgreSQL login role that made the change),
    ``entry`` (the entry's content after the change; for a deletion, its last content), ``entry_id``,
    ``event`` (create, correct, recalculate or delete), ``leaf_index`` (its position in the log, so a
    moved leaf no longer matches its hash), ``reason`` (omitted when none), ``recorded_at`` (see
    :func:`recorded_at_text`) and ``tenant_id``.
    """
    return canonical_json({
        "actor": actor, "entry": entry, "entry_id": entry_id, "event": event, "leaf_index": leaf_index,
        "reason": reason, "recorded_at": recorded_at_text(recorded_at), "tenant_id": tenant_id,
    })


def parse_canonical(data: bytes) -> Any:
    """Parse canonical JSON bytes, keeping every number exact (fractions as Decimal)."""
    return json.loads(data, parse_float=Decimal)


