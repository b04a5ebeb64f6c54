"""Calculation methods of the Scope 3 Technical Guidance, vectorised over a DataFrame of activity rows.

One call calculates every row; a row that cannot be calculated is refused *by itself*, with the
reason in its ``error`` column, and never stops the others. Methods:

- ``spend_based``: spend, converted to the factor's currency and price year (exchange rate of the
  spend's year, then the US CPI-U; :mod:`scope3lib.accounting.currency`), times an EEIO factor (kg CO2e per
  ``USD_2022``).
- ``average_data``: activity quantity in any unit pint can convert to the factor's unit, times the
  factor (kWh, litre, tonne, m3, room.night...).
- ``distance_based``: the same for transport, with a factor per tonne.km, passenger.km or km.
- ``supplier_specific``: the supplier's reported emissions (``supplier_kg_co2e``) allocated by the
  share of its revenue that is our spend (``spend / supplier_revenue``, both in the same currency).
- ``hybrid`` (Technical Guidance, category 1, hybrid method): the supplier's scope 1 and 2 emissions
  allocated the same way, plus the upstream emissions of what it buys, estimated with the EEIO
  factor on our spend less the sector's own direct share (``eeio_direct_share``, 0-1), so the
  supplier's direct emissions are not counted twice.

Every per-row lookup (factor, unit conversion, exchange rate, price index, category rules) is done
once per distinct value and broadcast with integer codes, so a million rows take well under a
second on two cores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..categories import CATEGORIES, DataSource, Method
from ..errors import InvalidArgument
from ..sheets import read_sheet
from . import currency, quality, units

#: The columns of an activity file, in order.
INPUT_COLUMNS: tuple[str, ...] = (
    "category", "method", "quantity", "unit", "factor_source", "factor_key", "spend", "currency",
    "spend_year", "supplier", "period_start", "period_end",
)  # fmt: skip
#: Columns an activity file may add.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "factor_version", "supplier_kg_co2e", "supplier_revenue", "eeio_direct_share", "data_source", "description",
)  # fmt: skip
#: Columns :func:`calculate` adds.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "factor_version", "factor_value", "factor_unit", "amount_in_factor_unit", "kg_co2e", "data_quality", "error",
)  # fmt: skip

SUPPLIER_SOURCE = "supplier"
_METHODS = quality.METHODS
_METHOD_INDEX = {m.value: i for i, m in enumerate(_METHODS)}
_SPEND, _AVERAGE, _DISTANCE, _SUPPLIER, _HYBRID = (
    _METHOD_INDEX[Method.SPEND_BASED], _METHOD_INDEX[Method.AVERAGE_DATA], _METHOD_INDEX[Method.DISTANCE_BASED],
    _METHOD_INDEX[Method.SUPPLIER_SPECIFIC], _METHOD_INDEX[Method.HYBRID],
)  # fmt: skip


@dataclass
class _Codes:
    """A text column as integer codes into its distinct values, cleaned once per distinct value."""

    codes: np.ndarray  # int64, -1 where empty
    values: np.ndarray  # object array of the distinct, stripped values

    def take(self, table: np.ndarray, missing: object) -> np.ndarray:
        """``table[code]`` per row (``table`` aligned with ``values``), ``missing`` where empty."""
        table = np.asarray(table)
        if len(self.values) == 0:
            return np.full(len(self.codes), missing, dtype=table.dtype if table.dtype != object else object)
        out = table[np.clip(self.codes, 0, None)]  # fancy indexing copies
        out[self.codes < 0] = missing
        return out

    def text(self) -> np.ndarray:
        return self.take(self.values, "")


def _codes(column: pd.Series | None, n: int, transform: Callable[[str], str] = str.strip) -> _Codes:
    if column is None:
        return _Codes(np.full(n, -1, dtype=np.int64), np.array([], dtype=object))
    raw_codes, uniques = pd.factorize(column, use_na_sentinel=True)
    cleaned = np.array(["" if pd.isna(u) else transform(str(u)) for u in uniques], dtype=object)
    # Values that clean to the same text ("kWh " and "kWh") share one code; empty text is missing.
    distinct, remap = np.unique(cleaned, return_inverse=True) if len(cleaned) else (cleaned, np.array([], int))
    codes = np.where(raw_codes >= 0, remap[np.clip(raw_codes, 0, None)] if len(remap) else -1, -1).astype(np.int64)
    empty = np.flatnonzero(distinct == "")
    if empty.size:
        codes[codes == empty[0]] = -1
    return _Codes(codes, distinct)


def _numbers(column: pd.Series | None, n: int, few: bool = False) -> np.ndarray:
    """A column as float64, NaN where empty or not a number. ``few``: few distinct values (parse each once)."""
    if column is None:
        return np.full(n, np.nan)
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    if few:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(dtype="float64")
        out = parsed[np.clip(codes, 0, None)] if len(parsed) else np.full(n, np.nan)
        out[codes < 0] = np.nan
        return out
    values = column.to_numpy(dtype=object)
    filled = (values != "") & pd.notna(values)
    out = np.full(n, np.nan)
    try:
        out[filled] = np.asarray(values[filled], dtype=np.float64)
    except (TypeError, ValueError):  # some cell is not a number: parse them the careful way
        out = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return out


class _Errors:
    """The first reason each row is refused (later checks do not overwrite an earlier reason).

    A message is a string, an array aligned with the rows, or a function of the refused rows'
    positions, so that row-specific text is only built for the rows that need it.
    """

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.ok = np.ones(n, dtype=bool)

    def refuse(self, mask: np.ndarray, message: str | np.ndarray | Callable[[np.ndarray], list[str]]) -> None:
        mask = mask & self.ok
        if not mask.any():
            return
        if isinstance(message, str):
            self.reason[mask] = message
        elif callable(message):
            where = np.flatnonzero(mask)
            self.reason[where] = np.asarray(message(where), dtype=object)
        else:
            self.reason[mask] = np.asarray(message, dtype=object)[mask]
        self.ok &= ~mask


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each row's value): np.unique's result by hashing, faster than sorting."""
    inverse, uniques = pd.factorize(values)
    return np.asarray(uniques), inverse


def _pick_factors(factors: pd.DataFrame, src: _Codes, key: _Codes, version_col: _Codes,
                  versions: Mapping[str, str] | None) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row's factor in ``factors`` (-1 unknown) and the reason where unknown."""
    n = len(src.codes)
    pos = np.full(n, -1, dtype=np.int64)
    why = np.full(n, None, dtype=object)
    latest = factors.loc[factors["latest"].astype(bool), ["source", "version"]].drop_duplicates()
    latest_by_source = dict(zip(latest["source"], latest["version"], strict=False))
    known_versions = factors.groupby("source")["version"].unique().to_dict()
    index: dict[tuple[str, str, str], int] = {}
    ambiguous: set[tuple[str, str, str]] = set()
    for i, (s, v, k) in enumerate(zip(factors["source"], factors["version"], factors["factor_key"], strict=True)):
        t = (str(s), str(v), str(k))
        if t in index:
            ambiguous.add(t)
        index[t] = i
    nv = max(len(version_col.values), 1) + 1
    nk = max(len(key.values), 1) + 1
    combo = ((src.codes + 1) * nv + (version_col.codes + 1)) * nk + (key.codes + 1)
    uniq, inverse = _distinct(combo)
    upos = np.full(len(uniq), -1, dtype=np.int64)
    uwhy = np.full(len(uniq), None, dtype=object)
    for j, c in enumerate(uniq.tolist()):
        sc, rest = divmod(c, nv * nk)
        vc, kc = divmod(rest, nk)
        if sc == 0 or kc == 0:
            continue  # missing source or key: refused by the caller with its own message
        s, k = str(src.values[sc - 1]), str(key.values[kc - 1])
        if vc:
            v = str(version_col.values[vc - 1])
        elif versions and s in versions:
            v = versions[s]
        else:
            v = latest_by_source.get(s, "")
        if s not in known_versions:
            uwhy[j] = f"unknown factor dataset {s!r} (see `scope3 factors datasets`)"
        elif v not in set(known_versions[s]):
            uwhy[j] = f"no version {v!r} of factor dataset {s!r}; stored: {', '.join(map(str, known_versions[s]))}"
        elif (s, v, k) in ambiguous:
            uwhy[j] = f"factor {k!r} of {s} {v} exists for several regions or years; it cannot be chosen by key alone"
        elif (s, v, k) not in index:
            uwhy[j] = f"unknown factor {k!r} in {s} {v}"
        else:
            upos[j] = index[(s, v, k)]
    pos[:] = upos[inverse]
    why[:] = uwhy[inverse]
    return pos, why


@dataclass
class _Factor:
    """The factor each row applies, taken from the factor table (NaN or None where it has none)."""

    source: _Codes  # the rows' factor_source column
    have: np.ndarray  # bool: the row's method needs a factor and it was found
    value: np.ndarray  # kg CO2e per factor unit
    unit: np.ndarray  # object
    version: np.ndarray  # object
    year: np.ndarray  # float64
    unit_code: np.ndarray  # position in unit_values, -1 where no factor
    unit_values: pd.Index  # the distinct units of the factor table


@dataclass
class _Calculation:
    """What the steps of :func:`calculate` share: the rows' parsed columns, the refusals, the results so far."""

    rows: pd.DataFrame
    errors: _Errors
    method: np.ndarray  # int64 position in _METHODS, -1 unknown
    factor: _Factor
    spend: np.ndarray
    spend_year: np.ndarray
    currency: _Codes
    supplier_kg: np.ndarray
    revenue: np.ndarray
    amount: np.ndarray  # the activity in the factor's unit
    kg: np.ndarray

    @property
    def n(self) -> int:
        return len(self.rows)


def calculate(rows: pd.DataFrame, factors: pd.DataFrame, *, versions: Mapping[str, str] | None = None,
              data_source: str = DataSource.IMPORT.value) -> pd.DataFrame:
    """Calculate kg CO2e for every activity row; refuse, per row, what cannot be calculated.

    ``rows`` has the columns of :data:`INPUT_COLUMNS` (unused ones empty) and may have those of
    :data:`OPTIONAL_COLUMNS`. ``factors`` is :func:`scope3lib.factors.store.factor_table` (or
    :func:`~scope3lib.factors.store.builtin_factor_table`). A row uses the factor version it names
    (``factor_version``), else ``versions[source]``, else the latest stored version of its source.

    Returns ``rows`` with :data:`OUTPUT_COLUMNS` added: the factor version, value (kg CO2e per
    factor unit) and unit applied, the activity in the factor's unit (for spend: dollars of the
    factor's price year), ``kg_co2e``, ``data_quality`` (1-5) and ``error`` (empty when calculated).
    """
    missing = [c for c in INPUT_COLUMNS if c not in rows.columns]
    if missing:
        raise InvalidArgument(
            f"activity rows lack column(s) {', '.join(missing)}; expected {', '.join(INPUT_COLUMNS)}"
        )
    n = len(rows)
    errors = _Errors(n)
    method = _method_and_category(rows, errors)
    s = _Calculation(
        rows=rows, errors=errors, method=method, factor=_resolve_factors(rows, factors, method, versions, errors),
        spend=_numbers(rows["spend"], n), spend_year=_numbers(rows["spend_year"], n, few=True),
        currency=_codes(rows["currency"], n, lambda v: v.strip().upper()),
        supplier_kg=_numbers(rows.get("supplier_kg_co2e"), n), revenue=_numbers(rows.get("supplier_revenue"), n),
        amount=np.full(n, np.nan), kg=np.full(n, np.nan),
    )  # fmt: skip
    _physical_activity(s)
    _spend_activity(s)
    s.kg = np.where(np.isin(method, [_SPEND, _AVERAGE, _DISTANCE]), s.amount * s.factor.value, s.kg)
    _supplier_data(s)
    return _output(s, _data_quality(s, data_source))


def _method_and_category(rows: pd.DataFrame, errors: _Errors) -> np.ndarray:
    """Each row's method as its position in ``_METHODS`` (-1 unknown).

    Refuses unknown methods, categories outside 1-15 and methods the category does not allow.
    """
    n = len(rows)
    method = _codes(rows["method"], n, lambda s: s.strip().lower())
    method_index = np.array([_METHOD_INDEX.get(v, -1) for v in method.values], dtype=np.int64)
    mcode = method.take(method_index, -1).astype(np.int64)
    unknown_methods = np.array([f"unknown method {v!r}: use one of {', '.join(_METHOD_INDEX)}"
                                for v in method.values], dtype=object)
    errors.refuse(mcode < 0, np.where(method.codes < 0, "method is empty",
                                      method.take(unknown_methods, "method is empty")))
    category = _numbers(rows["category"], n, few=True)
    cat_ok = np.isfinite(category) & (category == np.round(category)) & (category >= 1) & (category <= 15)
    errors.refuse(~cat_ok, "category must be a whole number from 1 to 15 (GHG Protocol Scope 3 categories)")
    _refuse_methods_not_allowed(np.where(cat_ok, category, 0).astype(np.int64), cat_ok, mcode, errors)
    return mcode


def _refuse_methods_not_allowed(cat: np.ndarray, cat_ok: np.ndarray, mcode: np.ndarray, errors: _Errors) -> None:
    allowed = np.zeros((16, len(_METHODS)), dtype=bool)
    for number, c in CATEGORIES.items():
        for allowed_method in c.methods:
            allowed[number, _METHOD_INDEX[allowed_method.value]] = True
    combo_ok = allowed[cat, np.clip(mcode, 0, None)]
    bad_combo = cat_ok & (mcode >= 0) & ~combo_ok
    if bad_combo.any():
        combos = cat * 8 + mcode
        messages: dict[int, str] = {}
        for c in np.unique(combos[bad_combo]).tolist():
            number, method_no = divmod(int(c), 8)
            names = ", ".join(sorted(x.value for x in CATEGORIES[number].methods))
            messages[c] = (f"method {_METHODS[method_no].value} is not allowed for category {number} "
                           f"({CATEGORIES[number].name}); allowed: {names}")
        errors.refuse(bad_combo, pd.Series(combos).map(messages).to_numpy(dtype=object))


def _resolve_factors(rows: pd.DataFrame, factors: pd.DataFrame, mcode: np.ndarray,
                     versions: Mapping[str, str] | None, errors: _Errors) -> _Factor:
    """The factor of each row whose method needs one; refuses rows whose factor is missing or unknown."""
    n = len(rows)
    src = _codes(rows["factor_source"], n)
    key = _codes(rows["factor_key"], n)
    ver = _codes(rows.get("factor_version"), n)
    needs_factor = np.isin(mcode, [_SPEND, _AVERAGE, _DISTANCE, _HYBRID])
    errors.refuse(needs_factor & ((src.codes < 0) | (key.codes < 0)),
                  "factor_source and factor_key are required for this method")
    pos, why = _pick_factors(factors, src, key, ver, versions)
    errors.refuse(needs_factor & (pos < 0) & (why != None), why)  # noqa: E711
    have = needs_factor & (pos >= 0)
    fpos = np.clip(pos, 0, None)
    f_value: np.ndarray = np.where(have, factors["kg_co2e_per_unit"].to_numpy(dtype="float64")[fpos], np.nan)
    f_unit = factors["unit"].to_numpy(dtype=object)[fpos] if len(factors) else np.full(n, None, dtype=object)
    f_unit[~have] = None
    f_version = factors["version"].to_numpy(dtype=object)[fpos] if len(factors) else np.full(n, None, dtype=object)
    f_version[~have] = None
    f_year: np.ndarray = np.where(have, factors["year"].to_numpy(dtype="float64")[fpos], np.nan)
    # Factor units are parsed once per distinct unit of the factor table, then taken by position.
    fu_codes, fu_values = pd.factorize(factors["unit"].astype(str))
    row_fu = np.where(have, fu_codes[fpos] if len(factors) else -1, -1)
    return _Factor(source=src, have=have, value=f_value, unit=f_unit, version=f_version, year=f_year,
                   unit_code=row_fu, unit_values=fu_values)


def _physical_activity(s: _Calculation) -> None:
    """Average-data and distance-based rows: the quantity converted to the factor's unit."""
    errors, f = s.errors, s.factor
    physical = np.isin(s.method, [_AVERAGE, _DISTANCE]) & f.have
    quantity = _numbers(s.rows["quantity"], s.n)
    unit = _codes(s.rows["unit"], s.n)
    errors.refuse(physical & ~np.isfinite(quantity), "quantity is required (a number) for this method")
    errors.refuse(physical & (quantity < 0), lambda w: [
        f"quantity must not be negative (got {q:g}): a return or credit is not an emission of this period; "
        "leave it out or net it against the purchase it reverses" for q in quantity[w]])
    errors.refuse(physical & (unit.codes < 0), "unit is required for this method")
    if not physical.any():
        return
    row_mult, row_reason = _unit_conversions(unit, f, physical)
    errors.refuse(physical & (row_reason != None), row_reason)  # noqa: E711
    distance = physical & (s.method == _DISTANCE)
    if distance.any():
        transport = np.array([units.is_transport_unit(str(u)) for u in f.unit_values] + [False], dtype=bool)
        errors.refuse(distance & ~transport[f.unit_code], lambda w: [
            f"distance-based needs a factor per tonne.km, passenger.km or km, not per {u}" for u in f.unit[w]])
    s.amount = np.where(physical, quantity * row_mult, s.amount)


def _unit_conversions(unit: _Codes, f: _Factor, physical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the multiplier from its unit to its factor's unit, or (NaN and) the reason there is none."""
    n = len(unit.codes)
    nf = len(f.unit_values) + 1
    pair = np.where(physical, (unit.codes + 1) * nf + (f.unit_code + 1), -1)
    uniq_pairs, pair_codes = _distinct(pair[physical])
    mult = np.full(len(uniq_pairs), np.nan)
    reason = np.full(len(uniq_pairs), None, dtype=object)
    for j, c in enumerate(uniq_pairs.tolist()):
        ucode, fcode = divmod(int(c), nf)
        ucode, fcode = ucode - 1, fcode - 1
        if ucode < 0 or fcode < 0:
            continue
        funit = str(f.unit_values[fcode])
        if units.MONEY_RE.match(funit):
            reason[j] = f"the factor is per {funit} (spend-based); use method spend_based"
            continue
        multiplier, err = units.conversion(str(unit.values[ucode]), funit)
        if multiplier is None:
            reason[j] = err
        else:
            mult[j] = multiplier
    row_mult = np.full(n, np.nan)
    row_reason = np.full(n, None, dtype=object)
    row_mult[physical] = mult[pair_codes]
    row_reason[physical] = reason[pair_codes]
    return row_mult, row_reason


def _spend_activity(s: _Calculation) -> None:
    """Spend-based and hybrid rows: the spend in the factor's currency and price year."""
    errors, f, cur = s.errors, s.factor, s.currency
    monetary = np.isin(s.method, [_SPEND, _HYBRID]) & f.have
    if not monetary.any():
        return
    money = pd.Series(f.unit_values, dtype=object).astype(str).str.extract(units.MONEY_RE.pattern)
    cur_table = np.array([*money[0].tolist(), None], dtype=object)
    year_table = np.append(pd.to_numeric(money[1], errors="coerce").to_numpy(dtype="float64"), np.nan)
    f_cur = cur_table[f.unit_code]
    f_price_year = year_table[f.unit_code]
    errors.refuse(monetary & pd.isna(f_cur), lambda w: [
        f"the factor is per {u}, not per unit of money; use method average_data or distance_based"
        for u in f.unit[w]])
    errors.refuse(monetary & ~np.isfinite(s.spend), "spend is required (a number) for this method")
    errors.refuse(monetary & (s.spend < 0), _negative_spend(s.spend))
    errors.refuse(monetary & (cur.codes < 0), "currency is required for spend (ISO 4217 code, e.g. USD)")
    year_ok = np.isfinite(s.spend_year) & (s.spend_year == np.round(s.spend_year))
    errors.refuse(monetary & ~year_ok, "spend_year is required (the year the money was spent)")
    code_text = cur.text()
    known = currency.known_currencies()
    known_code = np.array([v in known for v in cur.values] + [True], dtype=bool)
    unknown_cur = monetary & ~known_code[cur.codes]
    errors.refuse(unknown_cur, lambda w: [f"no exchange rates for currency {c!r} in the cited table; "
                                          f"known: {', '.join(sorted(known))}" for c in code_text[w]])
    converted = _spend_in_factor_money(s, monetary, year_ok, f_cur, f_price_year)
    s.amount = np.where(monetary, converted, s.amount)


def _spend_in_factor_money(s: _Calculation, monetary: np.ndarray, year_ok: np.ndarray, f_cur: np.ndarray,
                           f_price_year: np.ndarray) -> np.ndarray:
    """The spend in the factor's currency and price year.

    Spend already in the factor's currency and year is kept as it is; other spend is converted to
    dollars at the rate of its year, then to the factor's price year with the CPI-U. Refuses rows
    without a rate or a price index.
    """
    errors, cur, spend_year, f_unit = s.errors, s.currency, s.spend_year, s.factor.unit
    code_text = cur.text()
    # Rates per distinct (currency, year), broadcast back to the rows.
    cy = (cur.codes + 1) * 10_000 + np.where(year_ok, spend_year, 0).astype(np.int64)
    uniq_cy, cy_index = _distinct(cy)
    usd_rate = currency.usd_per_unit(
        np.array([cur.values[c // 10_000 - 1] if c // 10_000 else "" for c in uniq_cy.tolist()], dtype=object),
        np.array([c % 10_000 or np.nan for c in uniq_cy.tolist()], dtype="float64"))[cy_index]
    errors.refuse(monetary & np.isnan(usd_rate), lambda w: [
        f"no {c} exchange rate for {int(y)} in the cited table (scope3lib.accounting.currency.EXCHANGE_RATES); "
        "the row cannot be converted" for c, y in zip(code_text[w], spend_year[w], strict=True)])
    same = (f_cur == code_text) & (f_price_year == spend_year)
    usd_factor = (f_cur == "USD")
    errors.refuse(monetary & ~same & ~usd_factor, lambda w: [
        f"no price index for {c} in the cited table: a factor per {u} applies only to {c} spent in its year"
        for c, u in zip(f_cur[w], f_unit[w], strict=True)])
    cpi_spend = currency.cpi_usd(spend_year)
    cpi_factor = currency.cpi_usd(f_price_year)
    missing_year = np.where(np.isnan(cpi_spend), spend_year, f_price_year)
    errors.refuse(monetary & usd_factor & ~same & (np.isnan(cpi_spend) | np.isnan(cpi_factor)), lambda w: [
        f"no US CPI-U for {int(y)} in the cited table; the row cannot be brought to {u} prices"
        for y, u in zip(missing_year[w], f_unit[w], strict=True)])
    with np.errstate(invalid="ignore"):
        converted: np.ndarray = np.where(same, s.spend, s.spend * usd_rate * cpi_factor / cpi_spend)
    return converted


def _negative_spend(spend: np.ndarray) -> Callable[[np.ndarray], list[str]]:
    return lambda w: [f"spend must not be negative (got {v:,.2f}): a refund or credit note is not an emission; "
                      "net it against the purchase it reverses, or leave it out" for v in spend[w]]


def _supplier_data(s: _Calculation) -> None:
    """Supplier-specific rows, and the supplier part of hybrid rows.

    The supplier's reported emissions are allocated by the share of its revenue that is our spend;
    hybrid adds the EEIO estimate of what the supplier buys.
    """
    errors, mcode, spend = s.errors, s.method, s.spend
    with_supplier = np.isin(mcode, [_SUPPLIER, _HYBRID])
    errors.refuse(with_supplier & ~np.isfinite(spend), "spend is required (a number) for this method")
    errors.refuse(with_supplier & (spend < 0), _negative_spend(spend))
    errors.refuse(with_supplier & (s.supplier_kg < 0), lambda w: [
        f"supplier_kg_co2e must not be negative (got {v:g}): a supplier's reported emissions are never below zero"
        for v in s.supplier_kg[w]])
    errors.refuse(with_supplier & ~np.isfinite(s.supplier_kg),
                  "supplier_kg_co2e is required: the supplier's reported emissions in kg CO2e "
                  "(scope 1 and 2 for hybrid)")
    errors.refuse(with_supplier & ~(s.revenue > 0),
                  "supplier_revenue is required: the supplier's revenue, in the currency of the spend")
    errors.refuse(with_supplier & (spend > s.revenue), "spend exceeds the supplier's revenue; check both amounts")
    with np.errstate(invalid="ignore", divide="ignore"):
        allocated = s.supplier_kg * spend / s.revenue
    supplier_rows = mcode == _SUPPLIER
    s.kg = np.where(supplier_rows, allocated, s.kg)
    s.amount = np.where(supplier_rows, spend, s.amount)
    hybrid = mcode == _HYBRID
    direct = _numbers(s.rows.get("eeio_direct_share"), s.n)
    errors.refuse(hybrid & ~((direct >= 0) & (direct <= 1)),
                  "eeio_direct_share is required for hybrid (0-1): the part of the EEIO factor that is the "
                  "sector's own direct emissions, replaced by the supplier's scope 1 and 2")
    s.kg = np.where(hybrid, allocated + s.amount * s.factor.value * (1 - direct), s.kg)


def _data_quality(s: _Calculation, data_source: str) -> np.ndarray:
    """Each row's overall data-quality score (:mod:`scope3lib.accounting.quality`)."""
    rows, n = s.rows, s.n
    start = _codes(rows["period_start"], n)
    start_years = pd.to_numeric(pd.Series(start.values, dtype=object).str[:4], errors="coerce").to_numpy(
        dtype="float64") if len(start.values) else np.array([])
    period_year = start.take(start_years, np.nan).astype("float64") if len(start.values) else np.full(n, np.nan)
    supplier_rows = s.method == _SUPPLIER
    supplier_year = np.where(supplier_rows, s.spend_year, np.nan)
    gap = np.where(supplier_rows, period_year - supplier_year, period_year - s.factor.year)
    src_text = (_codes(rows.get("data_source"), n, lambda v: v.strip().lower()).text() if "data_source" in rows
                else np.full(n, data_source, dtype=object))
    src_text = np.where(src_text == "", data_source, src_text)
    scores = quality.pedigree(np.clip(s.method, 0, None), src_text, gap)
    return quality.overall(scores)


def _output(s: _Calculation, dq: np.ndarray) -> pd.DataFrame:
    """``rows`` with :data:`OUTPUT_COLUMNS`; a refused row keeps its factor columns but no result."""
    ok = s.errors.ok
    out = s.rows.copy()
    version_out = s.factor.version.copy()
    unit_out = s.factor.unit.copy()
    value_out = s.factor.value.copy()
    supplier_rows = s.method == _SUPPLIER
    if supplier_rows.any():
        w = np.flatnonzero(supplier_rows)
        source_out = s.factor.source.text()
        source_out[w] = np.where(source_out[w] == "", SUPPLIER_SOURCE, source_out[w])
        out["factor_source"] = source_out
        years = [str(int(y)) if np.isfinite(y) else None for y in s.spend_year[w]]
        version_out[w] = np.asarray(years, dtype=object)
        unit_out[w] = np.asarray([f"{c}_{y}" if c and y else c
                                  for c, y in zip(s.currency.text()[w], years, strict=True)], dtype=object)
        with np.errstate(invalid="ignore", divide="ignore"):
            value_out[w] = s.supplier_kg[w] / s.revenue[w]
    out["factor_version"] = version_out
    out["factor_value"] = value_out
    out["factor_unit"] = unit_out
    out["amount_in_factor_unit"] = np.where(ok, s.amount, np.nan)
    out["kg_co2e"] = np.where(ok, s.kg, np.nan)
    out["data_quality"] = pd.array(np.where(ok, dq, 0), dtype="Int8")
    out.loc[~ok, "data_quality"] = pd.NA
    out["error"] = np.where(ok, "", s.errors.reason)
    return out


def read_activity_file(path: str) -> pd.DataFrame:
    """An activity file (CSV, or ``.xlsx``/``.xlsm`` first sheet) as text columns, empty cells as ''."""
    df = read_sheet(path, "activity file")
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise InvalidArgument(
            f"{path}, line 1 (header): missing column(s) {', '.join(missing)}; an activity file has "
            f"{', '.join(INPUT_COLUMNS)} (unused ones empty)"
        )
    return df
