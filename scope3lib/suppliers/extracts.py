"""ERP extracts (accounts payable or general-ledger lines) read into one shape, with a column mapping per tenant.

Each ERP names its columns its own way: SAP (``Vendor``/``Lifnr``, ``Name 1``, ``Amount in LC``, ``Crcy``,
``Pstng Date``, ``G/L Acct``, ``Cost Ctr``, ``Text``, ``Material Group``), Oracle (``Supplier Number``,
``Supplier Name``, ``Accounted Amount``, ``Currency Code``, ``GL Date``, ``Natural Account``,
``Line Description``), NetSuite (``Vendor``, ``Amount``, ``Currency``, ``Date``, ``Account``,
``Department``, ``Memo``). :func:`detect_mapping` finds the fields from such headers; the mapping that worked
(with the decimal mark and date format) is saved under a name per tenant, so next year's file imports as it
is. Every line that cannot be read is listed with its line number and the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..accounting import currency
from ..errors import ExtractError
from . import identifiers as ids
from .numbers import detect_date_format, detect_decimal, parse_amounts, parse_dates

#: The fields of a spend line; at least one vendor field, amount and posting_date are needed (and currency,
#: unless the import gives one for the whole file).
FIELDS = ("vendor_id", "vendor_name", "amount", "currency", "posting_date", "gl_account", "cost_centre",
          "description", "commodity_code", "vat_number", "lei", "duns", "product_id", "quantity", "unit")
REQUIRED = ("amount", "posting_date")

#: Header spellings per field (lower case), SAP, Oracle, NetSuite, Dynamics and plain English; first found wins.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "vendor_id": ("vendor_id", "vendor id", "vendor number", "vendor no", "vendor no.", "vendor code", "lifnr",
                  "supplier id", "supplier number", "supplier no", "supplier_id", "supplier_number", "creditor",
                  "kreditor", "vendor internal id", "vendor account"),
    "vendor_name": ("vendor_name", "vendor name", "supplier name", "supplier_name", "name 1", "name1", "name of vendor",
                    "vendor", "supplier", "payee", "kreditorname", "name"),
    "amount": ("amount", "amount in lc", "amount in local currency", "amount in doc. curr.", "amt in loc.cur.",
               "accounted amount", "entered amount", "invoice amount", "line amount", "net amount", "amount (net)",
               "amount_lc", "dmbtr", "wrbtr", "betrag", "value"),
    "currency": ("currency", "crcy", "curr.", "currency code", "currency_code", "document currency",
                 "local currency", "invoice currency", "invoice_currency_code", "waers", "währung"),
    "posting_date": ("posting_date", "posting date", "pstng date", "budat", "gl date", "gl_date",
                     "accounting date", "invoice date", "document date", "doc. date", "transaction date", "date",
                     "buchungsdatum"),
    "gl_account": ("gl_account", "g/l account", "g/l acct", "gl account", "natural account", "account number",
                   "expense account", "hkont", "sakto", "sachkonto", "account"),
    "cost_centre": ("cost_centre", "cost center", "cost centre", "cost ctr", "cost_center", "kostl", "kostenstelle",
                    "department"),
    "description": ("description", "text", "item text", "line description", "memo", "line memo", "sgtxt",
                    "buchungstext", "item_description", "item description"),
    "commodity_code": ("commodity_code", "commodity code", "unspsc", "unspsc code", "material group", "matkl",
                       "category code", "purchasing category", "commodity", "item category"),
    "vat_number": ("vat_number", "vat number", "vat", "vat registration no.", "vat reg. no.", "stceg", "tax id"),
    "lei": ("lei",),
    "duns": ("duns", "duns number", "d-u-n-s"),
    # Optional: what was bought, how much and in what unit, so that a supplier's approved product footprint
    # (scope3lib.suppliers.pcf_pricing) prices the purchase by quantity instead of by spend.
    "product_id": ("product_id", "product id", "material", "material number", "matnr", "item", "item number",
                   "item no", "article", "article number", "sku", "gtin", "product"),
    "quantity": ("quantity", "qty", "quantity invoiced", "invoiced quantity", "menge", "quantity received"),
    "unit": ("unit", "uom", "unit of measure", "order unit", "base unit", "meins", "einheit"),
}


@dataclass
class Mapping:
    """Which header holds each field, the decimal mark and the date format of an ERP's extracts."""

    columns: dict[str, str]
    decimal: str = "."
    date_format: str = "%Y-%m-%d"
    name: str = "default"
    found: list[str] = field(default_factory=list)  # fields found by their header, not given or saved

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "decimal": self.decimal, "date_format": self.date_format}


#: Headers that hold a vendor's number in some ERPs (SAP's "Vendor") and its name in others (NetSuite's).
_EITHER = ("vendor", "supplier", "creditor", "kreditor")


def detect_mapping(headers: list[str], given: dict[str, str] | None = None,
                   sample: pd.DataFrame | None = None) -> dict[str, str]:
    """field -> header for the headers of a file: ``given`` first, then the synonyms of :data:`SYNONYMS`. A
    header such as "Vendor" is the vendor's number when ``sample`` shows its values are digits, else its name."""
    lower = {h.strip().lower(): h for h in headers}
    out = {f: lower.get(h.strip().lower(), h) for f, h in (given or {}).items()}
    for h in _EITHER:
        if "vendor_id" not in out and sample is not None and h in lower and lower[h] in sample:
            values = sample[lower[h]].astype(str).str.strip()
            values = values[values != ""]
            if len(values) and values.str.fullmatch(r"\d+").mean() >= 0.9:
                out["vendor_id"] = lower[h]
    used = set(out.values())
    for f in FIELDS:
        if f in out:
            continue
        for synonym in SYNONYMS[f]:
            header = lower.get(synonym)
            if header is not None and header not in used:
                out[f] = header
                used.add(header)
                break
    return out


def saved_mapping(conn: Connection, name: str) -> Mapping | None:
    row = conn.execute(sa.text("SELECT columns, decimal, date_format FROM column_mappings WHERE name = :n"),
                       {"n": name}).first()
    return None if row is None else Mapping(dict(row.columns), row.decimal, row.date_format, name)


def save_mapping(conn: Connection, mapping: Mapping) -> None:
    conn.execute(sa.text(
        "INSERT INTO column_mappings (tenant_id, name, columns, decimal, date_format) VALUES "
        "(tenant_of(current_user), :n, CAST(:c AS jsonb), :d, :f) ON CONFLICT (tenant_id, name) DO UPDATE SET "
        "columns = EXCLUDED.columns, decimal = EXCLUDED.decimal, date_format = EXCLUDED.date_format, "
        "updated_at = now() WHERE (column_mappings.columns, column_mappings.decimal, column_mappings.date_format) "
        "IS DISTINCT FROM (EXCLUDED.columns, EXCLUDED.decimal, EXCLUDED.date_format)"),
        {"n": mapping.name, "c": json.dumps(mapping.columns), "d": mapping.decimal, "f": mapping.date_format})


def resolve_mapping(raw: pd.DataFrame, source: str, saved: Mapping | None, *, name: str,
                    columns: dict[str, str] | None = None, decimal: str | None = None,
                    date_format: str | None = None, default_currency: str | None = None) -> Mapping:
    """The mapping for this file: the saved one (its headers must all be there), else detected from the headers;
    ``columns``, ``decimal`` and ``date_format`` override. Refused, naming the headers, when a needed field has
    no column."""
    headers = [str(c) for c in raw.columns]
    if saved is not None and not columns:
        missing = [h for h in saved.columns.values() if h.lower() not in {x.lower() for x in headers}]
        if missing:
            raise ExtractError(f"{source}, line 1 (header): the saved column mapping {name!r} expects column(s) "
                               f"{', '.join(missing)}, not in this file (it has {', '.join(headers)}); give "
                               "--column FIELD=HEADER for each, or import under another --mapping name")
        chosen = dict(saved.columns)
    else:
        chosen = detect_mapping(headers, columns, raw.head(1000))
    chosen = {f: next(h for h in headers if h.lower() == c.lower()) for f, c in chosen.items()
              if c.lower() in {h.lower() for h in headers}}
    needed = list(REQUIRED) + ([] if default_currency else ["currency"])
    missing_fields = [f for f in needed if f not in chosen]
    if not ({"vendor_id", "vendor_name"} & set(chosen)):
        missing_fields.insert(0, "vendor_id or vendor_name")
    if missing_fields:
        raise ExtractError(f"{source}, line 1 (header): no column found for {', '.join(missing_fields)} among "
                           f"{', '.join(headers)}; name them with --column FIELD=HEADER (e.g. --column "
                           "amount='Betrag'); fields: " + ", ".join(FIELDS))
    dec = decimal or (saved.decimal if saved and not columns else None) or detect_decimal(raw[chosen["amount"]])
    fmt = date_format or (saved.date_format if saved and not columns else None)
    if fmt is None:
        try:
            fmt = detect_date_format(raw[chosen["posting_date"]])
        except ValueError as exc:
            raise ExtractError(f"{source}, column {chosen['posting_date']!r}: {exc}; give --date-format "
                               "(e.g. '%d/%m/%Y')") from None
        fmt = fmt or "%Y-%m-%d"
    return Mapping(chosen, dec, fmt, name)


def _per_distinct(values: pd.Series, fn: Callable[[str], str]) -> np.ndarray:
    """``fn`` of each value, computed once per distinct value (an extract repeats its vendors and accounts)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    done = np.array([fn(str(u)) for u in uniques] + [""], dtype=object)
    return done[np.where(codes < 0, len(uniques), codes)]


def _vendor_key(vendor_id: object, name: str) -> str:
    vid = ids.vendor_number(vendor_id)
    return f"id:{vid}" if vid is not None else f"name:{ids.name_key(name)}"


def vendor_keys(vendor_id: pd.Series, vendor_name: pd.Series) -> np.ndarray:
    """A vendor's key in the extract: its ERP number (``id:`` and the number without leading zeros) when the
    extract has one, else its normalised name (``name:`` and :func:`~.identifiers.name_key`); once per distinct
    (number, name) pair."""
    id_codes, _ = pd.factorize(vendor_id.to_numpy(dtype=object))
    name_codes, names = pd.factorize(vendor_name.to_numpy(dtype=object))
    # One code per (number, name) pair, from the two columns' codes: no string is built per line.
    codes, uniques = pd.factorize((id_codes.astype(np.int64) + 1) * (len(names) + 1) + (name_codes + 1))
    first = np.full(len(uniques), len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    ids_, names_ = vendor_id.to_numpy(dtype=object), vendor_name.to_numpy(dtype=object)
    keys = np.array([_vendor_key(ids_[i], str(names_[i])) for i in first] + [""], dtype=object)
    return keys[codes]


def read_lines(raw: pd.DataFrame, mapping: Mapping, *, default_currency: str | None = None
               ) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The extract's lines in the fields' shape, and the problems as (file line, reason).

    Columns: line_no (the file's line, the header being 1), the text fields, ``amount`` (float), ``currency``,
    ``posting_date`` (datetime64), ``vendor_key`` and ``line_hash`` (SHA-256 of the line's values as read).
    """
    n = len(raw)
    empty = pd.Series(np.full(n, "", dtype=object))
    # Amounts and dates are parsed once per distinct text by their own parsers, which ignore surrounding blanks.
    text = {f: empty if f not in mapping.columns else
            pd.Series(raw[mapping.columns[f]].to_numpy(dtype=object), dtype=object) if f in ("amount", "posting_date")
            else pd.Series(_per_distinct(raw[mapping.columns[f]], str.strip), dtype=object) for f in FIELDS}
    lines = pd.DataFrame({f: text[f] for f in FIELDS if f not in ("amount", "posting_date", "quantity")})
    lines.insert(0, "line_no", np.arange(2, n + 2, dtype=np.int64))
    lines["amount"] = parse_amounts(text["amount"], mapping.decimal)
    lines["quantity"] = parse_amounts(text["quantity"], mapping.decimal)
    lines["currency"] = _per_distinct(text["currency"], lambda c: c.upper() or (default_currency or "").upper())
    lines["posting_date"] = parse_dates(text["posting_date"], mapping.date_format).to_numpy()
    lines["vendor_key"] = vendor_keys(text["vendor_id"], text["vendor_name"])
    lines["line_hash"] = line_hashes(raw)
    return lines, _problems(lines, text, mapping)


def line_hashes(raw: pd.DataFrame) -> list[str]:
    """SHA-256 of each line's values (joined by the unit separator), as the file held them."""
    columns = [raw[c].to_numpy(dtype=object).tolist() for c in raw.columns]
    sha = hashlib.sha256
    return [sha("\x1f".join(values).encode()).hexdigest() for values in zip(*columns, strict=True)]


def _problems(lines: pd.DataFrame, text: dict[str, pd.Series], mapping: Mapping) -> list[tuple[int, str]]:
    """(file line, reason) of every line that cannot be imported; a message is built only for the lines refused."""
    reasons = np.full(len(lines), "", dtype=object)

    def refuse(mask: np.ndarray, message: str | Callable[[np.ndarray], list[str]]) -> None:
        mask = mask & (reasons == "")
        if mask.any():
            where = np.flatnonzero(mask)
            reasons[where] = message if isinstance(message, str) else np.asarray(message(where), dtype=object)

    vendor_id, vendor_name = text["vendor_id"].to_numpy(dtype=object), text["vendor_name"].to_numpy(dtype=object)
    refuse((vendor_id == "") & (vendor_name == ""), "no vendor (id or name)")
    amount_text, date_text = text["amount"].to_numpy(dtype=object), text["posting_date"].to_numpy(dtype=object)
    refuse(~np.isfinite(lines["amount"].to_numpy()), lambda w: [
        f"amount {a!r} is not a number (decimal mark {mapping.decimal!r})" for a in amount_text[w]])
    dates = lines["posting_date"]
    refuse(dates.isna().to_numpy(), lambda w: [f"posting date {d!r} is not a date as {mapping.date_format}"
                                               for d in date_text[w]])
    cur = lines["currency"].to_numpy(dtype=object)
    refuse(cur == "", "no currency (give the file's currency with --currency when the extract has no column)")
    years = dates.dt.year.to_numpy(dtype="float64")
    rate = currency.usd_per_unit(cur, years)
    cpi = currency.cpi_usd(years)
    refuse(~np.isfinite(rate) & (cur != "") & np.isfinite(years), lambda w: [
        f"no {c} exchange rate for {int(y)} in the cited table (scope3lib.accounting.currency); the line cannot "
        "be priced" for c, y in zip(cur[w], years[w], strict=True)])
    refuse(~np.isfinite(cpi) & np.isfinite(years), lambda w: [
        f"no US price index (CPI-U) for {int(y)} in the cited table; the line cannot be priced" for y in years[w]])
    quantity = lines["quantity"].to_numpy()
    quantity_text = text["quantity"].to_numpy(dtype=object)
    given = quantity_text != ""
    refuse(given & ~np.isfinite(quantity), lambda w: [
        f"quantity {q!r} is not a number (decimal mark {mapping.decimal!r})" for q in quantity_text[w]])
    refuse(given & np.isfinite(quantity) & (text["unit"].to_numpy(dtype=object) == ""),
           "a quantity without its unit (kg, l, pcs, kWh, t*km ...): give the unit column")
    for f, check in (("vat_number", ids.vat_number), ("lei", ids.lei), ("duns", ids.duns)):
        if f in mapping.columns:
            bad = _bad_identifiers(text[f], check)
            refuse(bad != "", _pick(bad))
    where = np.flatnonzero(reasons != "")
    line_no = lines["line_no"].to_numpy(dtype=np.int64)
    return [(int(line_no[i]), str(reasons[i])) for i in where]


def _pick(messages: np.ndarray) -> Callable[[np.ndarray], list[str]]:
    return lambda where: [str(m) for m in messages[where]]


def _bad_identifiers(values: pd.Series, check: Any) -> np.ndarray:
    codes, uniques = pd.factorize(values)
    why = np.array([_why(check, u) for u in uniques] or [""], dtype=object)
    return why[np.clip(codes, 0, None)]


def _why(check: Any, value: str) -> str:
    if not value:
        return ""
    try:
        check(value)
        return ""
    except ValueError as exc:
        return str(exc)
