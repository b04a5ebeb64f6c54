"""ERP spend extracts into the inventory: import, match, classify, price, and the analyst's review.

:func:`import_extract` reads an extract (:mod:`.extracts`), refuses it line by line when any line is bad,
matches vendors to suppliers (:mod:`.matching`), classifies lines by the tenant's rules
(:mod:`.classification`), keeps every line (file, line number, hash), and writes one spend-based entry per
group of lines (:mod:`.pricing`) through :mod:`scope3lib.accounting.entries`, all in one transaction.

- The same file again changes nothing (its SHA-256 is known).
- A file whose months already hold lines of another import is refused, unless it is a corrected extract
  (``replace=True`` with a ``reason``): the old lines of those months are set aside and the months' entries
  re-priced, so the ledger records each change as a ``recalculate`` (or a create or delete) with the reason.
- Months in a closed period are refused.

:func:`unclassified` and :func:`unmatched` list what needs an analyst, with suggestions;
:func:`confirm_sector` and :func:`confirm_match` turn a decision into a rule or an alias and re-price the
open months it changes. :func:`trace` gives the lines behind an entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db, frames
from ..accounting import currency, entries
from ..accounting.periods import closed_periods, pg_message, tenant_of
from ..errors import ExtractError, RowsRefused, Scope3Error
from ..factors import lookup
from ..sheets import read_sheet
from . import classification, extracts, pcf_pricing, records
from .classification import Rules
from .matching import SupplierIndex, candidates, match_vendors
from .pricing import group_lines, price

#: The largest extract read (bytes): a bigger file is refused before it is read, so one upload cannot take the
#: server's memory. 512 MB holds several million AP lines as CSV.
MAX_FILE_BYTES = 512 * 1024 * 1024
_CHUNK = 100_000


@dataclass(frozen=True)
class ExtractImport:
    """What an import did: its id, the lines, how many matched and classified, the entries it changed."""

    import_id: int
    file: str
    lines: int
    unchanged: bool = False
    matched: int = 0
    classified: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    kg_co2e: float = 0.0
    replaced: tuple[int, ...] = ()

    def sentence(self) -> str:
        if self.unchanged:
            return f"{self.file} was already imported (import {self.import_id}): nothing changed"
        return (f"imported {self.lines:,} lines of {self.file} (import {self.import_id}): {self.matched:,} matched "
                f"to a supplier, {self.classified:,} classified; entries: {self.created:,} created, {self.updated:,} "
                f"re-priced, {self.deleted:,} removed; {self.kg_co2e:,.1f} kg CO2e in the months imported"
                + (f"; replaces the lines of import(s) {', '.join(map(str, self.replaced))}" if self.replaced else ""))


def prepare(lines: pd.DataFrame, index: SupplierIndex, rules: Rules) -> pd.DataFrame:
    """``lines`` with supplier_id (-1 none), matched_by, category (0 unclassified), naics_code and classified_by:
    matching once per distinct vendor, classification once per distinct value (pure; no database). A line that
    has a supplier_id (>= 0) already keeps it (it may have been matched by an identifier the stored line lacks)."""
    if lines.empty:
        return lines.assign(supplier_id=np.array([], np.int64), matched_by=[], category=np.array([], np.int16),
                            naics_code=[], classified_by=[])
    codes, _ = pd.factorize(lines["vendor_key"])
    first = pd.Series(np.arange(len(lines))).groupby(codes).first().to_numpy()
    sid, how = match_vendors(lines.iloc[first], index)
    supplier, matched_by = sid[codes], how[codes]
    if "supplier_id" in lines:
        kept = lines["supplier_id"].to_numpy(dtype=np.int64)
        supplier = np.where(kept >= 0, kept, supplier)
        matched_by = np.where(kept >= 0, "kept", matched_by)
    naics_of = dict(zip(index.names["supplier_id"], index.names["naics_code"].fillna(""), strict=True))
    s_codes, s_uniques = pd.factorize(supplier)
    sup_naics = np.array([naics_of.get(int(s), "") for s in s_uniques], dtype=object)[s_codes]
    out = lines.assign(supplier_id=supplier, matched_by=matched_by)
    cls = classification.classify(out, rules, sup_naics)
    return out.assign(category=cls["category"].to_numpy(), naics_code=cls["naics_code"].to_numpy(),
                      classified_by=cls["classified_by"].to_numpy())


def _months(dates: pd.Series) -> list[dt.date]:
    return sorted({d.date() for d in pd.to_datetime(dates).dt.to_period("M").dt.start_time})


def _closed_months(conn: Connection, months: Sequence[dt.date]) -> dict[dt.date, str]:
    closed = closed_periods(conn)
    out = {}
    for m in months:
        end = (pd.Timestamp(m) + pd.offsets.MonthEnd(0)).date()
        for label, s, e in closed:
            if m <= e and end >= s:
                out[m] = label
    return out


def _read_file(path: Path) -> tuple[pd.DataFrame, str]:
    if not path.is_file():
        raise ExtractError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ExtractError(f"{path}: {size / 2**20:,.0f} MB is more than the {MAX_FILE_BYTES / 2**20:,.0f} MB an "
                           "extract may have; split it by period and import each part")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return read_sheet(path, "spend extract"), digest


def import_extract(engine: Engine, path: str | Path, *, mapping: str = "default", columns: dict[str, str] | None = None,
                   decimal: str | None = None, date_format: str | None = None, currency: str | None = None,
                   replace: bool = False, reason: str | None = None) -> ExtractImport:
    """Import an AP or GL extract (CSV or .xlsx) into the tenant's inventory, all or nothing (see the module).

    ``mapping`` names the tenant's saved column mapping (created from this file's headers the first time);
    ``columns`` (field -> header), ``decimal`` (``","`` for ``1.234,56``), ``date_format`` (``%d.%m.%Y``) and
    ``currency`` (for an extract without a currency column) override it. ``replace`` with a ``reason``: a
    corrected extract replaces the lines already imported for its months.
    """
    p = Path(path)
    if replace and not (reason and reason.strip()):
        raise ExtractError("a corrected extract needs a reason (--reason); the ledger records it with every change")
    raw, digest = _read_file(p)
    with engine.connect() as conn:
        known = conn.execute(sa.text("SELECT id, lines FROM spend_imports WHERE sha256 = :h"), {"h": digest}).first()
        if known is not None:
            return ExtractImport(int(known.id), p.name, int(known.lines), unchanged=True)
        m = extracts.resolve_mapping(raw, str(p), extracts.saved_mapping(conn, mapping), name=mapping,
                                     columns=columns, decimal=decimal, date_format=date_format,
                                     default_currency=currency)
        index, rules = SupplierIndex.read(conn), Rules.read(conn)
    lines, problems = extracts.read_lines(raw, m, default_currency=currency)
    if problems:
        raise RowsRefused(str(p), problems, len(lines), "lines")
    if lines.empty:
        raise ExtractError(f"{p}: the extract has a header but no lines")
    prepared = prepare(lines, index, rules)
    months = _months(prepared["posting_date"])
    try:
        with engine.begin() as conn:
            return _write_import(conn, p, digest, m, prepared, months, replace, reason)
    except sa.exc.DBAPIError as exc:
        raise ExtractError(f"{p}: nothing imported: {pg_message(exc)}") from exc


def _write_import(conn: Connection, p: Path, digest: str, m: extracts.Mapping, lines: pd.DataFrame,
                  months: list[dt.date], replace: bool, reason: str | None) -> ExtractImport:
    closed = _closed_months(conn, months)
    if closed:
        shown = ", ".join(f"{k:%Y-%m} ({v})" for k, v in sorted(closed.items()))
        raise ExtractError(f"{p}: lines fall in closed periods: {shown}; a closed period's entries cannot change "
                           "(take those lines out, or import them into an open period's extract)")
    # Extracts of one ERP (one column mapping) for the same months are versions of each other; another ERP's
    # extract for the same months (a second ledger, another entity) is more spend.
    same_source = ("FROM spend_lines l JOIN spend_imports i ON i.id = l.import_id WHERE l.active AND i.mapping = :map "
                   "AND date_trunc('month', l.posting_date)::date = ANY(CAST(:m AS date[]))")
    params = {"m": months, "map": m.name}
    earlier = [int(i) for i in conn.execute(sa.text(f"SELECT DISTINCT l.import_id {same_source} ORDER BY 1"),
                                            params).scalars()]
    if earlier and not replace:
        raise ExtractError(f"{p}: its months ({months[0]:%Y-%m} to {months[-1]:%Y-%m}) already hold lines of import(s) "
                           f"{', '.join(map(str, earlier))} of mapping {m.name!r}; if this is a corrected extract, "
                           "import it with --replace --reason '...' (the old lines of those months are replaced "
                           "through the ledger); if it comes from another ERP, give it its own --mapping name")
    who = records.actor()
    from ..ledger import log as ledger_log  # the ledger's database half loads only where entries change

    ledger_log.annotate(conn, "recalculate", reason or f"spend extract {p.name}")
    import_id = int(conn.scalar(sa.text(
        "INSERT INTO spend_imports (tenant_id, file_name, sha256, mapping, first_day, last_day, lines, replaces, "
        "reason, imported_by) VALUES (tenant_of(current_user), :f, :h, :m, :a, :b, :n, :r, :why, :who) RETURNING id"),
        {"f": p.name, "h": digest, "m": m.name, "a": months[0], "b": (pd.Timestamp(months[-1]) +
                                                                     pd.offsets.MonthEnd(0)).date(),
         "n": len(lines), "r": earlier or None, "why": reason, "who": who}))
    if earlier:
        conn.execute(sa.text(f"UPDATE spend_lines SET active = false WHERE (import_id, line_no) IN "
                             f"(SELECT l.import_id, l.line_no {same_source})"), params)
    lines = lines.copy()
    created, updated, deleted, kg = rebuild(conn, months, new_lines=lines)
    _insert_lines(conn, import_id, lines)
    extracts.save_mapping(conn, m)
    return ExtractImport(import_id, p.name, len(lines), matched=int((lines["supplier_id"] >= 0).sum()),
                         classified=int((lines["category"] > 0).sum()), created=created, updated=updated,
                         deleted=deleted, kg_co2e=kg, replaced=tuple(earlier))


_LINE_COLUMNS = {
    "line_no": "integer", "group_id": "bigint", "line_hash": "text", "vendor_id": "text", "vendor_name": "text",
    "vendor_key": "text",
    "supplier_id": "bigint", "amount": "numeric", "currency": "text", "posting_date": "date", "gl_account": "text",
    "cost_centre": "text", "description": "text", "commodity_code": "text", "category": "smallint",
    "naics_code": "text", "classified_by": "text", "product_id": "text", "quantity": "float8", "unit": "text",
}


def _insert_lines(conn: Connection, import_id: int, lines: pd.DataFrame) -> None:
    """Every line, in chunks of arrays (one statement per chunk: fast, and row-level security still applies)."""
    frame = lines.assign(
        supplier_id=lines["supplier_id"].where(lines["supplier_id"] >= 0).astype("Int64"),
        category=lines["category"].where(lines["category"] > 0).astype("Int64"),
        amount=lines["amount"].round(2), posting_date=pd.to_datetime(lines["posting_date"]).dt.date)
    for f in ("vendor_id", "vendor_name", "gl_account", "cost_centre", "description", "commodity_code",
              "naics_code", "classified_by", "product_id", "unit"):
        frame[f] = frame[f].astype(object).where(frame[f].astype(str) != "", None)
    cols = list(_LINE_COLUMNS)
    unnest = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _LINE_COLUMNS.items())
    sql = sa.text(f"INSERT INTO spend_lines (tenant_id, import_id, active, {', '.join(cols)}) "
                  f"SELECT tenant_of(current_user), :import_id, true, u.* FROM unnest({unnest}) AS u")
    for start in range(0, len(frame), _CHUNK):
        part = frame.iloc[start:start + _CHUNK]
        params: dict[str, Any] = {"import_id": import_id}
        for c in cols:
            params[c] = frames.values(part[c])
        conn.execute(sql, params)


def _text(values: pd.Series) -> pd.Series:
    """A text column with ``""`` for missing values, whatever dtype pandas gave it (all-NULL reads as float)."""
    return values.astype(object).where(values.notna(), "").astype(str)


def approved_footprints(conn: Connection) -> list[Any]:
    """The footprints of approved PCF submissions (submission_id, supplier_id, footprint), oldest approval first."""
    return list(conn.execute(sa.text(
        "SELECT s.id AS submission_id, s.supplier_id, f.footprint FROM supplier_submissions s, "
        "jsonb_array_elements(s.payload -> 'footprints') AS f(footprint) WHERE s.status = 'approved' "
        "AND s.kind = 'pcf' ORDER BY s.decided_at, s.id")).all())


def _disclosures(conn: Connection) -> pd.DataFrame:
    return db.read_frame(conn, "SELECT supplier_id, year, scope1_kg, scope2_kg, upstream_kg, revenue, currency, "
                               "eeio_direct_share FROM supplier_disclosures")


_GROUPED = ["import_id", "line_no", "vendor_key", "vendor_name", "supplier_id", "amount", "currency", "posting_date",
            "category", "naics_code", "product_id", "quantity", "unit", "group_id"]


def rebuild(conn: Connection, months: Sequence[dt.date], new_lines: pd.DataFrame | None = None
            ) -> tuple[int, int, int, float]:
    """Re-price the entries of ``months`` (first days) from their active, classified lines: new groups get an
    entry, changed ones are updated (a ``recalculate`` leaf with the transaction's reason), groups that are gone
    lose theirs. Months in closed periods are left alone. ``new_lines`` (:func:`prepare`'s, not stored yet) count
    too and get their ``group_id``, so they are stored linked. Returns (created, updated, deleted, kg CO2e)."""
    months = [m for m in months if m not in _closed_months(conn, months)]
    if not months:
        return 0, 0, 0, 0.0
    mp = {"m": list(months)}
    stored = db.read_frame(conn, "SELECT import_id, line_no, vendor_key, vendor_name, coalesce(supplier_id, -1) AS "
                                 "supplier_id, amount, currency, posting_date, coalesce(category, 0) AS category, "
                                 "coalesce(naics_code, '') AS naics_code, product_id, quantity, unit, group_id FROM "
                                 "spend_lines WHERE active AND date_trunc('month', posting_date)::date = "
                                 "ANY(CAST(:m AS date[]))", mp)
    stored["posting_date"] = pd.to_datetime(stored["posting_date"])
    stored["amount"] = stored["amount"].astype(float)
    stored["quantity"] = pd.to_numeric(stored["quantity"], errors="coerce").astype("float64")
    for c in ("vendor_name", "product_id", "unit"):
        stored[c] = _text(stored[c])
    lines = stored
    if new_lines is not None:
        fresh = new_lines.assign(import_id=-1, group_id=np.nan)[_GROUPED]
        lines = pd.concat([stored[_GROUPED], fresh], ignore_index=True) if len(stored) else fresh
    lines = lines.reset_index(drop=True)
    # Purchases of a product with an approved footprint are priced by it; the rest by spend, as grouped here.
    by_pcf, pcf_key = pcf_pricing.price_lines(lines, pcf_pricing.read_approved(approved_footprints(conn)))
    priced_by_pcf = np.array([k is not None for k in pcf_key], dtype=bool)
    groups, line_group = group_lines(lines.assign(category=np.where(priced_by_pcf, 0, lines["category"])))
    old = db.read_frame(conn, "SELECT g.id, g.group_key, g.entry_id, e.factor_version FROM spend_groups g "
                              "LEFT JOIN emission_entries e ON e.id = g.entry_id WHERE g.month = ANY(CAST(:m AS "
                              "date[]))", mp)
    pinned = _text(groups["group_key"].map(dict(zip(old["group_key"], _text(old["factor_version"]), strict=True))))
    priced = price(groups, lookup.factor_table(conn), _disclosures(conn),
                   pinned.to_numpy(dtype=object)[groups["spend"].to_numpy() > 0])
    priced = pd.concat([priced.assign(activity_quantity=np.nan, activity_unit=None), by_pcf], ignore_index=True)
    bad = priced[priced["error"] != ""]
    if len(bad):
        raise Scope3Error("spend groups that cannot be priced: " + "; ".join(
            f"{k}: {e}" for k, e in zip(bad["group_key"][:10], bad["error"][:10], strict=True)))
    created, updated, deleted = _write_groups(conn, priced, old)
    gid: dict[str, int] = dict(conn.execute(sa.text(
        "SELECT group_key, id FROM spend_groups WHERE month = ANY(CAST(:m AS date[]))"), mp).all())
    key_of_line = np.asarray(groups["group_key"].to_numpy(dtype=object)[np.clip(line_group, 0, None)]
                             if len(groups) else np.full(len(lines), None), dtype=object)
    key_of_line[line_group < 0] = None
    key_of_line[priced_by_pcf] = np.asarray(pcf_key, dtype=object)[priced_by_pcf]
    linked = pd.Series(key_of_line, dtype=object).map(gid).to_numpy(dtype="float64")
    _link_lines(conn, stored, linked[:len(stored)])
    if new_lines is not None:
        new_lines["group_id"] = pd.array(linked[len(stored):], dtype="Int64")
    return created, updated, deleted, float(priced["kg_co2e"].sum())


_ENTRY_COLUMNS = ("category", "period_start", "period_end", "method", "supplier_id", "description", "spend",
                  "spend_currency", "spend_year", "activity_quantity", "activity_unit", "factor_source",
                  "factor_version", "factor_key", "factor_value", "factor_unit", "kg_co2e", "data_source",
                  "data_quality")


def _write_groups(conn: Connection, priced: pd.DataFrame, old: pd.DataFrame) -> tuple[int, int, int]:
    tid = tenant_of(conn)
    had = old.set_index("group_key")
    with_entry = priced["group_key"].isin(had.index[had["entry_id"].notna()])
    gone = old[~old["group_key"].isin(priced["group_key"])]
    deleted = entries.delete(conn, gone["entry_id"].dropna().astype("int64").tolist())
    conn.execute(sa.text("DELETE FROM spend_groups WHERE id = ANY(CAST(:i AS bigint[]))"),
                 {"i": gone["id"].astype("int64").tolist()})
    update = priced[with_entry]
    changes = update[list(_ENTRY_COLUMNS)].drop(columns=["period_start", "period_end"]).assign(
        id=had.loc[update["group_key"], "entry_id"].astype("int64").to_numpy())
    updated = entries.update_values(conn, changes)
    new = priced[~with_entry]
    ids = entries.insert_returning_ids(conn, new[list(_ENTRY_COLUMNS)].assign(tenant_id=tid))
    conn.execute(sa.text(
        "INSERT INTO spend_groups (tenant_id, group_key, month, entry_id) SELECT tenant_of(current_user), u.k, u.m, "
        "u.e FROM unnest(CAST(:k AS text[]), CAST(:m AS date[]), CAST(:e AS bigint[])) AS u(k, m, e) "
        "ON CONFLICT (tenant_id, group_key) DO UPDATE SET entry_id = EXCLUDED.entry_id"),
        {"k": new["group_key"].tolist(), "m": list(new["month"]), "e": ids})
    return len(ids), updated, deleted


def _link_lines(conn: Connection, stored: pd.DataFrame, linked: np.ndarray) -> None:
    """Point the stored lines whose group changed at their new group (None: no group, e.g. unclassified)."""
    before = pd.to_numeric(stored["group_id"], errors="coerce").to_numpy(dtype="float64")
    changed = ~((before == linked) | (np.isnan(before) & np.isnan(linked)))
    sel_all = np.flatnonzero(changed)
    for start in range(0, len(sel_all), _CHUNK):
        sel = sel_all[start:start + _CHUNK]
        conn.execute(sa.text(
            "UPDATE spend_lines l SET group_id = u.g FROM unnest(CAST(:i AS bigint[]), CAST(:n AS integer[]), "
            "CAST(:g AS bigint[])) AS u(i, n, g) WHERE l.import_id = u.i AND l.line_no = u.n"),
            {"i": stored["import_id"].to_numpy()[sel].astype("int64").tolist(),
             "n": stored["line_no"].to_numpy()[sel].astype("int64").tolist(),
             "g": [None if np.isnan(g) else int(g) for g in linked[sel]]})


# --- the analyst's review ------------------------------------------------------------------------------------


def _active_lines(bind: Engine | Connection, where: str = "") -> pd.DataFrame:
    df = db.read_frame(bind, "SELECT import_id, line_no, vendor_id, vendor_name, vendor_key, coalesce(supplier_id, -1) "
                             "AS supplier_id, amount, currency, posting_date, gl_account, description, commodity_code, "
                             "coalesce(category, 0) AS category, coalesce(naics_code, '') AS naics_code, "
                             f"coalesce(classified_by, '') AS classified_by FROM spend_lines WHERE active {where}")
    df["posting_date"] = pd.to_datetime(df["posting_date"])
    df["amount"] = df["amount"].astype(float)
    df["spend_usd"] = df["amount"].to_numpy() * currency.usd_per_unit(
        df["currency"].to_numpy(dtype=object), df["posting_date"].dt.year.to_numpy(dtype="float64"))
    for c in ("vendor_id", "vendor_name", "gl_account", "description", "commodity_code"):
        df[c] = _text(df[c])
    return df


def unclassified(engine: Engine, limit: int = 50, suggestions: int = 3) -> pd.DataFrame:
    """The lines no rule classifies, one row per vendor and description, the largest spend (USD) first, with
    ranked sector suggestions (``suggestions``: ``[(naics_code, title, score), ...]``)."""
    df = _active_lines(engine, "AND category IS NULL")
    cols = ["vendor_key", "vendor_name", "description", "gl_account", "commodity_code", "lines", "spend_usd",
            "suggestions"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = (df.groupby(["vendor_key", "vendor_name", "description", "gl_account", "commodity_code"], as_index=False)
         .agg(lines=("line_no", "count"), spend_usd=("spend_usd", "sum"))
         .sort_values("spend_usd", ascending=False).head(limit).reset_index(drop=True))
    texts = (g["vendor_name"] + " " + g["description"]).tolist()
    g["suggestions"] = pd.Series(classification.SectorSuggester.read(engine).suggest(texts, suggestions),
                                 index=g.index, dtype=object)
    return g[cols]


def unmatched(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The vendors no supplier matched, the largest spend (USD) first, with candidate suppliers
    (``candidates``: ``[(supplier_id, name, similarity), ...]``) for an analyst to confirm."""
    df = _active_lines(engine, "AND supplier_id IS NULL")
    cols = ["vendor_key", "vendor_id", "vendor_name", "lines", "spend_usd", "candidates"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = (df.groupby("vendor_key", as_index=False)
         .agg(vendor_id=("vendor_id", "first"), vendor_name=("vendor_name", "first"), lines=("line_no", "count"),
              spend_usd=("spend_usd", "sum"))
         .sort_values("spend_usd", ascending=False).head(limit).reset_index(drop=True))
    g["candidates"] = pd.Series(candidates(g["vendor_name"].tolist(), SupplierIndex.read(engine)), index=g.index,
                                dtype=object)
    return g[cols]


def confirm_sector(engine: Engine, kind: str, pattern: str, category: int, naics_code: str, *,
                   note: str | None = None) -> int:
    """Make an analyst's classification a rule (kind: commodity, gl_account, vendor or keyword) and re-price the
    open months whose lines it changes. Returns the rule's id."""
    with engine.connect() as conn:
        sectors = set(lookup.sector_factors(conn).index.astype(str))
    classification.check_rule(kind, pattern, int(category), naics_code.strip(), sectors)
    with engine.begin() as conn:
        rule = int(conn.scalar(sa.text(
            "INSERT INTO classification_rules (tenant_id, kind, pattern, category, naics_code, note, created_by) "
            "VALUES (tenant_of(current_user), :k, :p, :c, :n, :note, :who) ON CONFLICT (tenant_id, kind, pattern) "
            "DO UPDATE SET category = EXCLUDED.category, naics_code = EXCLUDED.naics_code, note = EXCLUDED.note "
            "RETURNING id"), {"k": kind, "p": pattern.strip(), "c": int(category), "n": naics_code.strip(),
                              "note": note, "who": records.actor()}))
        reapply(conn, f"classification rule {kind} {pattern.strip()!r} -> category {category}, NAICS {naics_code}")
    return rule


def confirm_match(engine: Engine, vendor_key: str, supplier: str | int) -> int:
    """Make an analyst's match of an extract's vendor (its ``vendor_key``) to a supplier an alias, and re-price the
    open months it changes. Returns the supplier's id."""
    with engine.begin() as conn:
        record = records.find(conn, supplier)
        kind, _, value = vendor_key.partition(":")
        if kind not in ("id", "name") or not value:
            raise ExtractError(f"vendor key {vendor_key!r} is not one of an extract (id:NUMBER or name:KEY; see "
                               "spend.unmatched)")
        name = conn.scalar(sa.text("SELECT vendor_name FROM spend_lines WHERE vendor_key = :k LIMIT 1"),
                           {"k": vendor_key})
        records.add_alias(conn, int(record["id"]), "vendor_id" if kind == "id" else "name",
                          value if kind == "id" else str(name or value))
        reapply(conn, f"vendor {vendor_key} matched to supplier {record['id']} ({record['name']})")
    return int(record["id"])


def reapply(conn: Connection, reason: str) -> tuple[int, int, int]:
    """Match and classify every active line of the open months again (after a new rule, alias or disclosure),
    write the lines that changed and re-price their months; the ledger records ``reason``."""
    lines = _active_lines(conn)
    if lines.empty:
        return 0, 0, 0
    open_months = set(_months(lines["posting_date"])) - set(_closed_months(conn, _months(lines["posting_date"])))
    lines = lines[lines["posting_date"].dt.to_period("M").dt.start_time.dt.date.isin(open_months)]
    again = prepare(lines.drop(columns=["category", "naics_code", "classified_by"]), SupplierIndex.read(conn),
                    Rules.read(conn))
    changed = ((again["supplier_id"].to_numpy() != lines["supplier_id"].to_numpy())
               | (again["category"].to_numpy() != lines["category"].to_numpy())
               | (again["naics_code"].to_numpy() != lines["naics_code"].to_numpy()))
    from ..ledger import log as ledger_log  # the ledger's database half loads only where entries change

    ledger_log.annotate(conn, "recalculate", reason)
    diff = again[changed]
    if len(diff):
        conn.execute(sa.text(
            "UPDATE spend_lines l SET supplier_id = nullif(u.s, -1), category = nullif(u.c, 0), "
            "naics_code = nullif(u.n, ''), classified_by = nullif(u.b, '') FROM unnest(CAST(:i AS bigint[]), "
            "CAST(:l AS integer[]), CAST(:s AS bigint[]), CAST(:c AS smallint[]), CAST(:n AS text[]), "
            "CAST(:b AS text[])) AS u(i, l, s, c, n, b) WHERE l.import_id = u.i AND l.line_no = u.l"),
            {"i": diff["import_id"].astype("int64").tolist(), "l": diff["line_no"].astype("int64").tolist(),
             "s": diff["supplier_id"].astype("int64").tolist(), "c": diff["category"].astype("int64").tolist(),
             "n": diff["naics_code"].astype(str).tolist(), "b": diff["classified_by"].astype(str).tolist()})
    created, updated, deleted, _ = rebuild(conn, sorted(open_months))
    return created, updated, deleted


def trace(engine: Engine, entry_id: int) -> pd.DataFrame:
    """The extract lines behind an emission entry: the file (name and SHA-256), the line number and the line's
    hash, with what it said."""
    return db.read_frame(engine, "SELECT i.file_name, i.sha256 AS file_sha256, l.line_no, l.line_hash, l.vendor_id, "
                                 "l.vendor_name, l.amount, l.currency, l.posting_date, l.gl_account, l.description, "
                                 "l.commodity_code, l.classified_by FROM spend_groups g JOIN spend_lines l ON "
                                 "l.group_id = g.id JOIN spend_imports i ON i.id = l.import_id WHERE g.entry_id = :e "
                                 "AND l.active ORDER BY l.import_id, l.line_no", {"e": int(entry_id)})


def imports(engine: Engine) -> pd.DataFrame:
    """The extracts imported, newest first."""
    return db.read_frame(engine, "SELECT id, file_name, sha256, mapping, first_day, last_day, lines, replaces, reason, "
                                 "imported_by, imported_at FROM spend_imports ORDER BY id DESC")
