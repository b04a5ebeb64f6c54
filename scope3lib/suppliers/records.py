"""The tenant's supplier records: the one writer of ``suppliers``.

Import, create, update, merge, archive and restore all go through here, so every record is checked the
same way before PostgreSQL sees it:

- ``naics_code`` must have a spend-based factor in the stored sector dataset (else its spend could not be
  priced), ``region`` must be a grid region some stored dataset covers, ``country`` an ISO 3166-1 alpha-2
  code, the currency one the exchange-rate table knows, identifiers valid by their own rules
  (:mod:`.identifiers`);
- two records of one company are refused: same LEI, DUNS or VAT number, or the same normalised name.

Every change is kept by PostgreSQL itself (the ``supplier_history`` trigger of migration 0007): who (the
person named by :func:`actor`, and the login role), when, the action, the reason, and the row before and
after. Functions take a tenant's engine (``scope3lib.connect()``); row-level security keeps them to the
tenant's own records.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db, frames
from ..accounting import currency, entries
from ..accounting.periods import pg_message, tenant_of
from ..errors import DuplicateSupplier, InvalidArgument, RowsRefused, SupplierError, UnknownSupplier
from ..factors import lookup
from ..sheets import read_sheet
from ..tenancy import check_limit
from . import identifiers as ids
from .numbers import detect_decimal, parse_amounts

#: The fields of a supplier record a file or a caller may give, in the order `list` shows them.
FIELDS = ("name", "country", "region", "naics_code", "annual_spend", "spend_currency", "spend_year", "lei", "duns",
          "vat_number", "contact_email")
#: Header spellings of a supplier file, besides the field names themselves.
HEADERS = {
    "supplier": "name", "supplier name": "name", "vendor name": "name", "company": "name",
    "country code": "country", "iso country": "country",
    "grid region": "region", "grid_region": "region", "egrid subregion": "region",
    "naics": "naics_code", "naics code": "naics_code", "sector": "naics_code",
    "spend": "annual_spend", "annual spend": "annual_spend",
    "currency": "spend_currency", "year": "spend_year", "spend year": "spend_year",
    "vat": "vat_number", "vat number": "vat_number", "vat id": "vat_number", "duns number": "duns",
    "email": "contact_email", "contact": "contact_email", "contact email": "contact_email",
    "vendor id": "vendor_id", "vendor number": "vendor_id", "erp vendor id": "vendor_id",
}
IDENTIFIERS = ("lei", "duns", "vat_number")
_LIST_COLUMNS = ("id, name, country, region, naics_code, annual_spend, spend_currency, spend_year, lei, duns, "
                 "vat_number, contact_email, archived_at, merged_into, created_at, updated_at")


# A service acting for its callers (the REST API) names each one here; a context variable, so concurrent
# requests in other threads or tasks keep their own caller.
_acting: ContextVar[str | None] = ContextVar("scope3_supplier_actor", default=None)


def actor() -> str:
    """Who is making a change: the caller named by :func:`acting_as`, else the JupyterHub user of a notebook,
    else the operating-system user."""
    return _acting.get() or os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Record changes made inside the block as made by ``name`` (the REST API's key or hub user)."""
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


def set_actor(conn: Connection, action: str | None = None, reason: str | None = None) -> None:
    """Name the person, the action and the reason for the history rows this transaction writes."""
    conn.execute(sa.text("SELECT set_config('scope3.actor', :a, true), set_config('scope3.supplier_action', :c, "
                         "true), set_config('scope3.change_reason', :r, true)"),
                 {"a": actor(), "c": action or "", "r": reason or ""})


@dataclass(frozen=True)
class Reference:
    """What records are checked against: the sector codes with a factor, the grid regions, the currencies."""

    naics: frozenset[str]
    regions: frozenset[str]
    currencies: frozenset[str]

    @classmethod
    def read(cls, bind: Engine | Connection) -> Reference:
        table = lookup.factor_table(bind)
        return cls(frozenset(lookup.sector_factors(table=table).index.astype(str)),
                   frozenset(lookup.grid_candidates(table)["region"].astype(str)),
                   frozenset(currency.known_currencies() | {"USD"}))


# --- checking ------------------------------------------------------------------------------------------


def _check_value(field: str, raw: str, ref: Reference) -> Any:
    """The stored value of one field, or ValueError with the reason."""
    if field == "name":
        return raw.strip()
    if field == "country":
        v = raw.strip().upper()
        if v not in ids.COUNTRIES:
            raise ValueError(f"country {raw!r} is not an ISO 3166-1 alpha-2 code (e.g. US, DE, GB)")
        return v
    if field == "region":
        v = raw.strip().upper()
        if v not in ref.regions:
            raise ValueError(f"region {raw!r} is not a grid region of the stored factor datasets (eGRID subregion "
                             "or country; see `scope3 factors list egrid`)")
        return v
    if field == "naics_code":
        v = raw.strip()
        if v not in ref.naics:
            raise ValueError(f"NAICS code {raw!r} has no spend-based factor in the stored sector dataset "
                             "(`scope3 factors list epa-useeio`); use a 6-digit code of that table")
        return v
    if field == "spend_currency":
        v = raw.strip().upper()
        if v not in ref.currencies:
            raise ValueError(f"currency {raw!r} has no exchange rates in the cited table; known: "
                             f"{', '.join(sorted(ref.currencies))}")
        return v
    if field == "spend_year":
        if not raw.strip().isdigit() or not 1990 <= int(raw) <= 2100:
            raise ValueError(f"spend_year {raw!r} is not a year")
        return int(raw)
    checker = {"lei": ids.lei, "duns": ids.duns, "vat_number": ids.vat_number, "contact_email": ids.email}[field]
    return checker(raw)


Problem = tuple[int, str, str]  # (row position, field, reason)


def _check_rows(raw: pd.DataFrame, ref: Reference) -> tuple[pd.DataFrame, list[Problem]]:
    """Each row's fields checked (given ones only; blanks are None) and the problems as (row, field, reason)."""
    out: dict[str, list[Any]] = {f: [] for f in raw.columns}
    problems: list[Problem] = []
    spend = None
    if "annual_spend" in raw:
        spend = parse_amounts(raw["annual_spend"], detect_decimal(raw["annual_spend"]))
    for i, row in enumerate(raw.itertuples(index=False)):
        for field, value in zip(raw.columns, row, strict=True):
            text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
            if field == "annual_spend":
                v: Any = None if text == "" else spend[i] if spend is not None else None
                if text and (v is None or not np.isfinite(v) or v < 0):
                    problems.append((i, field, f"annual_spend {text!r} is not an amount of zero or more"))
                out[field].append(v if text and v is not None and np.isfinite(v) and v >= 0 else None)
                continue
            if text == "" or field == "vendor_id":
                out[field].append(text or None)
                if field == "name" and not text:
                    problems.append((i, field, "name is required"))
                continue
            try:
                out[field].append(_check_value(field, text, ref))
            except ValueError as exc:
                problems.append((i, field, str(exc)))
                out[field].append(None)
    frame = pd.DataFrame(out, columns=list(raw.columns))
    if "annual_spend" in frame:
        has_spend = frame["annual_spend"].notna().to_numpy()
        for f, what in (("spend_currency", "its currency"), ("spend_year", "its year")):
            missing = ~frame[f].notna().to_numpy() if f in frame else np.ones(len(frame), bool)
            problems += [(int(i), f, f"annual_spend needs {what} ({f})") for i in np.flatnonzero(has_spend & missing)]
    return frame, problems


# --- reading -------------------------------------------------------------------------------------------


def suppliers(bind: Engine | Connection, include_archived: bool = False) -> pd.DataFrame:
    """The tenant's supplier records (live ones unless ``include_archived``), by name."""
    where = "" if include_archived else " WHERE archived_at IS NULL"
    return db.read_frame(bind, f"SELECT {_LIST_COLUMNS} FROM suppliers{where} ORDER BY name")


def duplicates(bind: Engine | Connection) -> pd.DataFrame:
    """Live records that look like one company (the same normalised name), for an analyst to merge: one row per
    record, ``key`` shared within a group, largest groups first. Records entered before checks existed (SQL,
    the demo) may hold such pairs; imports and :func:`create` refuse new ones."""
    df = db.read_frame(bind, "SELECT id, name, country, naics_code, lei, duns, vat_number FROM suppliers "
                             "WHERE merged_into IS NULL")
    df.insert(0, "key", ids.name_keys(df["name"]))
    counts = df["key"].map(df["key"].value_counts())
    return (df[counts > 1].assign(n=counts[counts > 1]).sort_values(["n", "key", "id"], ascending=[False, True, True])
            .drop(columns="n").reset_index(drop=True))


def find(conn: Connection, ref: str | int) -> dict[str, Any]:
    """One record by id (an int: by id only; text: id, exact name, identifier or normalised name); refused when
    none or several match."""
    if isinstance(ref, int):  # an id is an id: never a name or identifier that happens to be digits
        found = conn.execute(sa.text(f"SELECT {_LIST_COLUMNS} FROM suppliers WHERE id = :i"),
                             {"i": ref}).mappings().first()
        if found is None:
            raise UnknownSupplier(f"no supplier with id {ref}")
        return dict(found)
    text = str(ref).strip()
    rows = conn.execute(sa.text(f"SELECT {_LIST_COLUMNS} FROM suppliers WHERE (CAST(:i AS bigint) IS NOT NULL "
                                "AND id = :i) OR name = :n OR lei = :n OR duns = :n OR vat_number = :n"),
                        {"i": int(text) if text.isdigit() and len(text) < 18 else None, "n": text}).mappings().all()
    if not rows:
        key = ids.name_key(text)
        every = conn.execute(sa.text(f"SELECT {_LIST_COLUMNS} FROM suppliers")).mappings().all()
        rows = [r for r in every if key and ids.name_key(r["name"]) == key]
    if not rows:
        raise UnknownSupplier(f"no supplier {text!r} (an id, a name or an identifier; see `scope3 suppliers list`)")
    if len(rows) > 1:
        raise SupplierError(f"{text!r} names {len(rows)} suppliers ({', '.join(str(r['id']) for r in rows)}); "
                            "give the id")
    return dict(rows[0])


def history(bind: Engine | Connection, ref: str | int | None = None) -> pd.DataFrame:
    """Every change of one record (or of all when ``ref`` is None): when, who, the action, the reason, and the
    fields that changed (``changes``: ``{field: [before, after]}``)."""
    with (bind.connect() if isinstance(bind, Engine) else _same(bind)) as conn:
        where, params = "", {}
        if ref is not None:
            where, params = " WHERE supplier_id = :s", {"s": find(conn, ref)["id"]}
        df = db.read_frame(conn, "SELECT id, supplier_id, changed_at, actor, role_name, action, reason, before, after "
                                 f"FROM supplier_changes{where} ORDER BY id", params)
    df["changes"] = pd.Series([_diff(b, a) for b, a in zip(df["before"], df["after"], strict=True)],
                              index=df.index, dtype=object)
    return df


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    b, a = before or {}, after or {}
    return {k: [b.get(k), a.get(k)] for k in sorted(set(a) | set(b))
            if b.get(k) != a.get(k) and k not in ("updated_at", "created_at")}


class _same:
    """A connection used as a context manager without closing it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def show(bind: Engine, ref: str | int) -> dict[str, Any]:
    """A record with its aliases, disclosures, spend matched to it and its history."""
    with bind.connect() as conn:
        record = find(conn, ref)
        sid = {"s": record["id"]}
        record["aliases"] = [dict(r) for r in conn.execute(sa.text(
            "SELECT kind, alias FROM supplier_aliases WHERE supplier_id = :s ORDER BY id"), sid).mappings()]
        record["disclosures"] = db.read_frame(conn, "SELECT year, scope1_kg, scope2_kg, upstream_kg, revenue, "
                                                    "currency, verification, source_document, recorded_by, created_at "
                                                    "FROM supplier_disclosures WHERE supplier_id = :s ORDER BY year",
                                              sid)
        record["spend_lines"] = int(conn.scalar(sa.text(
            "SELECT count(*) FROM spend_lines WHERE supplier_id = :s AND active"), sid) or 0)
        record["history"] = history(conn, record["id"])
    return record


# --- writing -------------------------------------------------------------------------------------------


def _conflicts(conn: Connection, values: dict[str, Any], exclude: int | None = None) -> tuple[str, str] | None:
    """The field and why ``values`` would duplicate another live record (an identifier, or the normalised name),
    else None."""
    for field in IDENTIFIERS:
        if values.get(field):
            other = conn.execute(sa.text(f"SELECT id, name FROM suppliers WHERE {field} = :v AND id <> :x"),
                                 {"v": values[field], "x": exclude or -1}).first()
            if other is not None:
                return field, f"{field} {values[field]} is already supplier {other.id} ({other.name})"
    if values.get("name"):
        key = ids.name_key(values["name"])
        for other in conn.execute(sa.text("SELECT id, name FROM suppliers WHERE merged_into IS NULL AND id <> :x"),
                                  {"x": exclude or -1}):
            if ids.name_key(other.name) == key:
                return "name", f"name {values['name']!r} is the same company as supplier {other.id} ({other.name})"
    return None


def _insert(conn: Connection, tid: int, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    cols = sorted({k for r in rows for k in r if k in FIELDS})
    params = [{c: r.get(c) for c in cols} | {"tenant_id": tid} for r in rows]
    result = conn.execute(sa.text(f"INSERT INTO suppliers (tenant_id, {', '.join(cols)}) VALUES "
                                  f"(:tenant_id, {', '.join(':' + c for c in cols)}) RETURNING id"), params)
    return [int(r[0]) for r in result] if len(params) == 1 else []


def _update(conn: Connection, sid: int, values: dict[str, Any]) -> None:
    cols = [c for c in values if c in FIELDS or c in ("archived_at", "merged_into")]
    if cols:
        conn.execute(sa.text(f"UPDATE suppliers SET {', '.join(f'{c} = :{c}' for c in cols)}, updated_at = now() "
                             "WHERE id = :id"), {**{c: values[c] for c in cols}, "id": sid})


def _check_one(fields: dict[str, Any], ref: Reference) -> dict[str, Any]:
    raw = pd.DataFrame([{k: "" if v is None else str(v) for k, v in fields.items()}])
    unknown = sorted(set(raw.columns) - set(FIELDS))
    if unknown:
        raise InvalidArgument(f"not fields of a supplier: {', '.join(unknown)}; fields: {', '.join(FIELDS)}")
    frame, problems = _check_rows(raw, ref)
    if problems:
        raise SupplierError("; ".join(p for _, _, p in problems), [(f, p) for _, f, p in problems])
    return frames.rows(frame.iloc[:1])[0]


def _slug(conn: Connection) -> str:
    return str(conn.scalar(sa.text("SELECT slug FROM tenants WHERE id = tenant_of(current_user)")))


def create(engine: Engine, *, reason: str | None = None, **fields: Any) -> int:
    """Add one supplier (fields of :data:`FIELDS`); returns its id. Refused when it duplicates another."""
    ref = Reference.read(engine)
    values = _check_one(fields, ref)
    if not values.get("name"):
        raise SupplierError("a supplier needs a name", [("name", "a supplier needs a name")])
    with engine.begin() as conn:
        set_actor(conn, "create", reason)
        clash = _conflicts(conn, values)
        if clash:
            raise DuplicateSupplier(f"not added: {clash[1]}", [clash])
        check_limit(conn, _slug(conn), "suppliers",
                    "SELECT count(*) FROM suppliers WHERE tenant_id = :t AND archived_at IS NULL")
        return _insert(conn, tenant_of(conn), [values])[0]


def update(engine: Engine, ref: str | int, *, reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """Change fields of one record (None clears a field other than the name); returns the record after."""
    reference = Reference.read(engine)
    given = {k: v for k, v in fields.items() if v is not None}
    values = _check_one(given, reference) if given else {}
    values |= {k: None for k, v in fields.items() if v is None and k != "name"}
    with engine.begin() as conn:
        record = find(conn, ref)
        if record["merged_into"] is not None:
            raise SupplierError(f"supplier {record['id']} was merged into {record['merged_into']}; change that one")
        clash = _conflicts(conn, values, exclude=record["id"])
        if clash:
            raise DuplicateSupplier(f"not changed: {clash[1]}", [clash])
        set_actor(conn, "update", reason)
        _update(conn, record["id"], values)
        return find(conn, record["id"])


def _live(conn: Connection, ref: str | int) -> dict[str, Any]:
    record = find(conn, ref)
    if record["merged_into"] is not None:
        raise SupplierError(f"supplier {record['id']} ({record['name']}) was already merged into "
                            f"{record['merged_into']}")
    return record


def merge(engine: Engine, keep: str | int, other: str | int, *, reason: str) -> dict[str, Any]:
    """Merge ``other`` into ``keep``: two records of one company become one.

    ``keep`` takes the fields it lacks and ``other``'s identifiers; ``other``'s name and aliases become
    aliases of ``keep`` (so extracts naming either match it); its disclosures of years ``keep`` has none for,
    its spend lines and its open-period emission entries move to ``keep`` (the ledger records each entry's
    change with ``reason``). ``other`` stays, archived and marked ``merged_into``, for its history and the
    entries of closed periods. Returns the record kept.
    """
    if not reason or not reason.strip():
        raise InvalidArgument("a merge needs a reason (it is kept in both records' history)")
    with engine.begin() as conn:
        a, b = _live(conn, keep), _live(conn, other)
        if a["id"] == b["id"]:
            raise SupplierError("a supplier cannot be merged into itself")
        set_actor(conn, "merge", reason)
        taken = {f: b[f] for f in IDENTIFIERS if b[f] and not a[f]}
        _update(conn, b["id"], {f: None for f in IDENTIFIERS} | {"merged_into": a["id"],
                                                                  "archived_at": dt.datetime.now(dt.UTC)})
        gained = {f: b[f] for f in FIELDS if f not in IDENTIFIERS and f != "name" and b[f] is not None
                  and a[f] is None}
        set_actor(conn, "update", f"merged {b['id']} ({b['name']}): {reason}")
        _update(conn, a["id"], gained | taken)
        params = {"a": a["id"], "b": b["id"]}
        conn.execute(sa.text("UPDATE supplier_aliases SET supplier_id = :a WHERE supplier_id = :b"), params)
        add_alias(conn, a["id"], "name", b["name"])
        conn.execute(sa.text("UPDATE supplier_disclosures d SET supplier_id = :a WHERE supplier_id = :b AND NOT "
                             "EXISTS (SELECT 1 FROM supplier_disclosures k WHERE k.supplier_id = :a "
                             "AND k.year = d.year)"), params)
        conn.execute(sa.text("UPDATE spend_lines SET supplier_id = :a WHERE supplier_id = :b"), params)
        try:
            entries.reassign_supplier(conn, b["id"], a["id"], reason=f"supplier {b['name']} merged into "
                                                                       f"{a['name']}: {reason}")
        except sa.exc.DBAPIError as exc:
            raise SupplierError(f"merge refused: {pg_message(exc)}") from exc
        return find(conn, a["id"])


def add_many(conn: Connection, tenant_id: int, frame: pd.DataFrame, *, reason: str) -> dict[str, int]:
    """Write generated records (the demo's, already consistent with the factor sets) for tenant ``tenant_id`` on
    an admin connection, with ``reason`` in their history; returns name -> id. People's files go through
    :func:`import_suppliers`, which checks every field."""
    unknown = sorted(set(frame.columns) - set(FIELDS))
    if unknown:
        raise InvalidArgument(f"not fields of a supplier: {', '.join(unknown)}")
    conn.execute(sa.text("SELECT set_config('scope3.change_reason', :r, true)"), {"r": reason})
    rows = frames.rows(frame)
    cols = list(frame.columns)
    conn.execute(sa.text(f"INSERT INTO suppliers (tenant_id, {', '.join(cols)}) VALUES "
                         f"(:tenant_id, {', '.join(':' + c for c in cols)})"),
                 [{**r, "tenant_id": tenant_id} for r in rows])
    found = conn.execute(sa.text("SELECT name, id FROM suppliers WHERE tenant_id = :t"), {"t": tenant_id}).all()
    return {str(name): int(sid) for name, sid in found}


def add_alias(conn: Connection, supplier_id: int, kind: str, alias: str) -> None:
    """Let ``alias`` (another name, or an ERP vendor number) stand for the supplier in matching."""
    key = ids.name_key(alias) if kind == "name" else ids.vendor_number(alias)
    if key is None:
        raise InvalidArgument(f"a vendor number alias needs a number, got {alias!r}")
    conn.execute(sa.text("INSERT INTO supplier_aliases (tenant_id, supplier_id, kind, alias, alias_key) "
                         "VALUES (tenant_of(current_user), :s, :k, :a, :key) ON CONFLICT (tenant_id, kind, alias_key) "
                         "DO UPDATE SET supplier_id = EXCLUDED.supplier_id, alias = EXCLUDED.alias"),
                 {"s": supplier_id, "k": kind, "a": alias.strip(), "key": key})


def archive(engine: Engine, ref: str | int, *, reason: str | None = None) -> dict[str, Any]:
    """Archive a record: it leaves the supplier list (and the plan's count) but keeps its entries and history."""
    with engine.begin() as conn:
        record = _live(conn, ref)
        if record["archived_at"] is not None:
            raise SupplierError(f"supplier {record['id']} ({record['name']}) is already archived")
        set_actor(conn, "archive", reason)
        _update(conn, record["id"], {"archived_at": dt.datetime.now(dt.UTC)})
        return find(conn, record["id"])


def restore(engine: Engine, ref: str | int, *, reason: str | None = None) -> dict[str, Any]:
    """Bring an archived record back (a merged one stays merged)."""
    with engine.begin() as conn:
        record = _live(conn, ref)
        if record["archived_at"] is None:
            raise SupplierError(f"supplier {record['id']} ({record['name']}) is not archived")
        check_limit(conn, _slug(conn), "suppliers",
                    "SELECT count(*) FROM suppliers WHERE tenant_id = :t AND archived_at IS NULL")
        set_actor(conn, "restore", reason)
        _update(conn, record["id"], {"archived_at": None})
        return find(conn, record["id"])


# --- importing a supplier file -------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplierImport:
    """What a supplier file changed: records created, updated (fields that differed), unchanged."""

    created: int
    updated: int
    unchanged: int


def read_supplier_file(path: str | Path) -> pd.DataFrame:
    """A supplier file (CSV or .xlsx) with its headers turned into field names; refused without ``name``."""
    df = read_sheet(path, "supplier file")
    df = df.rename(columns={c: HEADERS.get(c, c.replace(" ", "_")) for c in df.columns})
    if "name" not in df:
        raise InvalidArgument(f"{path}, line 1 (header): no name column; a supplier file has {', '.join(FIELDS)} "
                              "(all but name optional) and vendor_id (the ERP's vendor number)")
    return df[[c for c in (*FIELDS, "vendor_id") if c in df]]


def _existing(conn: Connection) -> pd.DataFrame:
    df = db.read_frame(conn, f"SELECT {_LIST_COLUMNS} FROM suppliers WHERE merged_into IS NULL")
    df["key"] = ids.name_keys(df["name"])
    return df


def _pair_rows(frame: pd.DataFrame, existing: pd.DataFrame) -> tuple[np.ndarray, list[Problem]]:
    """The existing record each row is (by identifier, then normalised name; -1 new) and rows that name the same
    company as an earlier row of the file."""
    n = len(frame)
    match = np.full(n, -1, dtype=np.int64)
    problems: list[Problem] = []
    seen: dict[tuple[str, str], int] = {}
    keys = ids.name_keys(frame["name"])
    by = {f: dict(zip(existing[f].dropna(), existing.loc[existing[f].notna(), "id"], strict=True))
          for f in IDENTIFIERS}
    by_key = existing.drop_duplicates("key").set_index("key")["id"].to_dict()
    for i in range(n):
        row_ids = [(f, str(frame.at[i, f])) for f in IDENTIFIERS if f in frame and isinstance(frame.at[i, f], str)
                   and frame.at[i, f]]
        for f, v in [*row_ids, ("name", keys[i])]:
            if (f, v) in seen:
                problems.append((i, f, f"same company as line {seen[(f, v)] + 2} ({f} {v})"))
                break
        for f, v in [*row_ids, ("name", keys[i])]:
            seen.setdefault((f, v), i)
        hits = {int(by[f][v]) for f, v in row_ids if v in by[f]}
        if len(hits) > 1:
            problems.append((i, row_ids[0][0], "its identifiers name different suppliers "
                             f"({', '.join(map(str, sorted(hits)))})"))
        elif hits:
            match[i] = hits.pop()
        elif keys[i] in by_key:
            match[i] = int(by_key[keys[i]])
    return match, problems


def import_suppliers(engine: Engine, rows: pd.DataFrame | str | Path, *, source: str | None = None,
                     reason: str | None = None) -> SupplierImport:
    """Add the suppliers of a file (or of ``rows``, text columns named by :data:`FIELDS`), all or nothing.

    A row that is a record already (same identifier, else the same normalised name) updates the fields it
    gives; a new one is created. Every bad row is refused with its line and reason in one
    :class:`~scope3lib.errors.RowsRefused`; then nothing is written. ``vendor_id`` (the ERP's vendor number)
    becomes an alias that ERP extracts are matched by.
    """
    if not isinstance(rows, pd.DataFrame):
        source = source or str(rows)
        rows = read_supplier_file(rows)
    source = source or "supplier rows"
    raw = rows.reset_index(drop=True).astype(object).fillna("")
    frame, problems = _check_rows(raw, Reference.read(engine))
    with engine.begin() as conn:
        set_actor(conn, None, reason or f"imported from {Path(source).name}")
        existing = _existing(conn)
        match, dupes = _pair_rows(frame, existing)
        bad = sorted({(i + 2, r, f) for i, f, r in problems + dupes})
        if bad:
            raise RowsRefused(source, [(line, r) for line, r, _ in bad], len(frame), "suppliers",
                              fields=[f for _, _, f in bad])
        created, updated = _write_import(conn, frame, match, existing)
        if created:
            check_limit(conn, _slug(conn), "suppliers",
                        "SELECT count(*) FROM suppliers WHERE tenant_id = :t AND archived_at IS NULL", extra=0)
    return SupplierImport(created, updated, len(frame) - created - updated)


def _write_import(conn: Connection, frame: pd.DataFrame, match: np.ndarray, existing: pd.DataFrame) -> tuple[int, int]:
    tid = tenant_of(conn)
    fields = [c for c in frame.columns if c in FIELDS]
    records = frames.rows(frame)
    new = [r for r, m in zip(records, match, strict=True) if m < 0]
    try:
        _insert(conn, tid, [{f: r.get(f) for f in fields} for r in new])
    except sa.exc.IntegrityError as exc:
        raise SupplierError(f"suppliers not imported: {pg_message(exc)}") from exc
    current = existing.set_index("id")
    updated = 0
    for r, m in zip(records, match, strict=True):
        if m < 0:
            continue
        old = current.loc[int(m)]
        change = {f: r[f] for f in fields if r.get(f) is not None and f != "name" and _differs(old[f], r[f])}
        if change:
            conn.execute(sa.text("SELECT set_config('scope3.supplier_action', 'update', true)"))
            _update(conn, int(m), change)
            updated += 1
    if "vendor_id" in frame:
        names: dict[str, int] = dict(conn.execute(sa.text(
            "SELECT name, id FROM suppliers WHERE merged_into IS NULL")).all())
        for r, m in zip(records, match, strict=True):
            if r.get("vendor_id"):
                add_alias(conn, int(m) if m >= 0 else int(names[str(r["name"])]), "vendor_id", str(r["vendor_id"]))
    conn.execute(sa.text("SELECT set_config('scope3.supplier_action', '', true)"))
    return len(new), updated


def _differs(old: Any, new: Any) -> bool:
    if old is None or (isinstance(old, float) and np.isnan(old)):
        return True
    try:
        return bool(float(old) != float(new))
    except (TypeError, ValueError):
        return str(old) != str(new)
