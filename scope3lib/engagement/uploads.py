"""The supplier's side without an API key: a tokenised upload link and a spreadsheet template.

A link is ``<api>/engage/uploads/<token>``: the token (``s3u_`` and 43 random characters, 256 bits) is shown
once and stored as its SHA-256 only, names one data request, expires (``engage_link_days``), may be used a
bounded number of times (once by default) and takes at most ``max_bytes`` per upload. An upload is used up only
when its content is taken: a refused file can be fixed and sent again with the same link.

The template (:func:`template`, .xlsx or CSV) has one column per field asked, one row per product asked (PCF
requests) or one row for the year (disclosures); :func:`read_filled` reads a filled one back and refuses it
line by line, naming the column and what to write, before anything is stored.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import tokens
from ..errors import FileFormatError, FootprintRefused, UploadRefused
from ..pact.model import check_footprint
from ..sheets import read_sheet
from ..suppliers import disclosures
from . import submissions

TOKEN_PREFIX = "s3u_"
PATH = "/engage/uploads"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: Template columns of a footprint request: (column, required, what to write).
PCF_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("product_id", True, "the product id as asked (GTIN, your article number, or a URN)"),
    ("product_name", True, "the product's name in your catalogue"),
    ("declared_unit", True, "liter, kilogram, cubic meter, kilowatt hour, megajoule, ton kilometer, square meter, "
                            "piece, hour or megabit second"),
    ("declared_unit_amount", True, "how many declared units the footprint is for (usually 1)"),
    ("pcf_kg_co2e", True, "kg CO2e per declared_unit_amount, excluding biogenic uptake (PACT "
                          "pcfExcludingBiogenicUptake)"),
    ("pcf_including_biogenic_kg_co2e", False, "kg CO2e including biogenic uptake (default: pcf_kg_co2e)"),
    ("fossil_ghg_kg_co2e", False, "fossil GHG emissions, kg CO2e (default: pcf_kg_co2e)"),
    ("product_mass_kg", False, "kg of product per declared unit (needed when we buy it by mass and it is "
                               "declared per piece or liter)"),
    ("reference_period_start", True, "first day of the data's period, YYYY-MM-DD"),
    ("reference_period_end", True, "last day of the data's period, YYYY-MM-DD"),
    ("geography_country", False, "ISO 3166 country code where it is made (e.g. DE)"),
    ("primary_data_share", False, "percentage of the footprint from primary data (0-100)"),
    ("standard", False, "the standard followed (default ISO14067)"),
)
DISCLOSURE_COLUMNS = tuple(c for c in disclosures.COLUMNS if c != "supplier")


@dataclass(frozen=True)
class Link:
    """A token as issued: the secret (shown once), its id and when it expires."""

    token: str
    token_id: int
    expires_at: dt.datetime

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}{PATH}/{self.token}"


@dataclass(frozen=True)
class Grant:
    """What a valid token lets its holder do: submit for one request of one supplier."""

    token_id: int
    request_id: int
    supplier_id: int
    supplier: str
    kind: str
    product_ids: list[str]
    year: int | None
    due_date: dt.date
    expires_at: dt.datetime
    uses_left: int
    max_bytes: int


def issue(conn: Connection, request_id: int, *, created_by: str, days: int = 30, max_uses: int = 1,
          max_bytes: int = 5 * 1024 * 1024) -> Link:
    """A new upload token for ``request_id``, in the caller's transaction; the earlier live ones are withdrawn,
    so a reminder's link is the only one that works."""
    conn.execute(sa.text("UPDATE upload_tokens SET revoked_at = now() WHERE request_id = :r AND revoked_at IS NULL"),
                 {"r": request_id})
    token = tokens.issue(TOKEN_PREFIX)
    row = conn.execute(sa.text(
        "INSERT INTO upload_tokens (tenant_id, request_id, token_hash, expires_at, max_uses, max_bytes, created_by) "
        "VALUES (tenant_of(current_user), :r, :h, now() + make_interval(days => :d), :u, :b, :by) "
        "RETURNING id, expires_at"),
        {"r": request_id, "h": tokens.digest(token), "d": days, "u": max_uses, "b": max_bytes, "by": created_by}).one()
    return Link(token, int(row.id), row.expires_at)


_GRANT = """
SELECT t.id, t.request_id, t.expires_at, t.max_uses - t.uses AS uses_left, t.max_bytes, t.revoked_at,
       t.expires_at <= now() AS expired, r.supplier_id, s.name AS supplier, r.kind, r.product_ids, r.year, r.due_date
  FROM upload_tokens t JOIN data_requests r ON r.id = t.request_id JOIN suppliers s ON s.id = r.supplier_id
 WHERE t.token_hash = :h"""


def grant(conn: Connection, token: str) -> Grant:
    """What ``token`` allows, or :class:`~scope3lib.errors.UploadRefused`: 401 for a token that does not exist,
    410 for one expired, used up or withdrawn."""
    row = conn.execute(sa.text(_GRANT), {"h": tokens.digest(token.strip())}).first() if token.startswith(
        TOKEN_PREFIX) else None
    if row is None:
        raise UploadRefused("this upload link is not valid: check that the whole link was copied, or ask your "
                            "contact for a new one", 401)
    if row.revoked_at is not None:
        raise UploadRefused("this upload link was replaced by a newer one (a reminder): use the link of the latest "
                            "message", 410)
    if row.expired:
        raise UploadRefused(f"this upload link expired on {row.expires_at:%Y-%m-%d %H:%M} UTC: ask your contact for "
                            "a new one", 410)
    if row.uses_left <= 0:
        raise UploadRefused("this upload link was used already: your data was received and is being reviewed; ask "
                            "your contact for a new link to send a correction", 410)
    return Grant(int(row.id), int(row.request_id), int(row.supplier_id), str(row.supplier), str(row.kind),
                 list(row.product_ids or []), row.year, row.due_date, row.expires_at, int(row.uses_left),
                 int(row.max_bytes))


def _use(conn: Connection, token_id: int) -> None:
    done = conn.execute(sa.text(
        "UPDATE upload_tokens SET uses = uses + 1, last_used_at = now() WHERE id = :i AND uses < max_uses "
        "AND revoked_at IS NULL AND expires_at > now()"), {"i": token_id}).rowcount
    if not done:  # another upload took the last use meanwhile
        raise UploadRefused("this upload link was used already", 410)


# --- templates ----------------------------------------------------------------------------------------------


def template_frame(kind: str, product_ids: list[str] | None = None, year: int | None = None) -> pd.DataFrame:
    """The template's rows: one per product asked, with product_id filled in; or one row for the year."""
    if kind == "pcf":
        rows = [{c: "" for c, _, _ in PCF_COLUMNS} | {"product_id": p, "declared_unit_amount": "1",
                                                       "standard": "ISO14067"} for p in (product_ids or [""])]
        return pd.DataFrame(rows, columns=[c for c, _, _ in PCF_COLUMNS])
    return pd.DataFrame([{c: "" for c in DISCLOSURE_COLUMNS} | {"year": str(year or ""), "verification": "none"}],
                        columns=list(DISCLOSURE_COLUMNS))


def _help_frame(kind: str) -> pd.DataFrame:
    if kind == "pcf":
        return pd.DataFrame([{"column": c, "required": "yes" if r else "no", "what to write": h}
                             for c, r, h in PCF_COLUMNS])
    return pd.DataFrame([{"column": c, "required": "yes" if c in disclosures.REQUIRED else "no"}
                         for c in DISCLOSURE_COLUMNS])


def template(kind: str, product_ids: list[str] | None = None, year: int | None = None, fmt: str = "xlsx") -> bytes:
    """The spreadsheet a supplier fills in: .xlsx (a ``data`` sheet and a ``help`` sheet) or CSV."""
    frame = template_frame(kind, product_ids, year)
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt != "xlsx":
        raise UploadRefused(f"template format {fmt!r}: xlsx or csv", 422)
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="data", index=False)
        _help_frame(kind).to_excel(writer, sheet_name="help", index=False)
    return out.getvalue()


def _number(text: str) -> str:
    """A decimal string as PACT wants it (``1.85``), commas taken as decimal marks when there is no point."""
    value = text.strip().replace(" ", "")
    if "," in value and "." not in value:
        value = value.replace(",", ".")
    return value


def _footprint(row: dict[str, str], grant: Grant, company_ids: list[str]) -> dict[str, Any]:
    excl = _number(row.get("pcf_kg_co2e", ""))
    start, end = row.get("reference_period_start", "").strip(), row.get("reference_period_end", "").strip()
    share = _number(row.get("primary_data_share", ""))
    pcf: dict[str, Any] = {
        "declaredUnitOfMeasurement": row.get("declared_unit", "").strip().lower(),
        "declaredUnitAmount": _number(row.get("declared_unit_amount", "")),
        "productMassPerDeclaredUnit": _number(row.get("product_mass_kg", "")) or "0",
        "referencePeriodStart": f"{start}T00:00:00Z" if len(start) == 10 else start,
        "referencePeriodEnd": f"{end}T23:59:59Z" if len(end) == 10 else end,
        "pcfExcludingBiogenicUptake": excl,
        "pcfIncludingBiogenicUptake": _number(row.get("pcf_including_biogenic_kg_co2e", "")) or excl,
        "fossilGhgEmissions": _number(row.get("fossil_ghg_kg_co2e", "")) or excl,
        "fossilCarbonContent": "0", "ipccCharacterizationFactors": ["AR6"],
        "crossSectoralStandards": [row.get("standard", "").strip() or "ISO14067"],
        "exemptedEmissionsPercent": "0",
    }
    if row.get("geography_country", "").strip():
        pcf["geographyCountry"] = row["geography_country"].strip().upper()
    if share:
        pcf["primaryDataShare"] = share
    pid = row.get("product_id", "").strip()
    return {
        "id": str(uuid.uuid4()), "specVersion": "3.0.0", "status": "Active",
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "companyName": grant.supplier,
        "companyIds": company_ids, "productDescription": row.get("product_name", "").strip(),
        "productIds": [pid if pid.lower().startswith("urn:") else f"urn:scope3:product:{pid}"],
        "productNameCompany": row.get("product_name", "").strip(), "pcf": pcf,
    }


# PACT property -> the template's column, so a refusal names what the supplier typed.
_COLUMN_OF = {"declaredUnitOfMeasurement": "declared_unit", "declaredUnitAmount": "declared_unit_amount",
              "productMassPerDeclaredUnit": "product_mass_kg", "referencePeriodStart": "reference_period_start",
              "referencePeriodEnd": "reference_period_end", "pcfExcludingBiogenicUptake": "pcf_kg_co2e",
              "pcfIncludingBiogenicUptake": "pcf_including_biogenic_kg_co2e",
              "fossilGhgEmissions": "fossil_ghg_kg_co2e", "geographyCountry": "geography_country",
              "primaryDataShare": "primary_data_share", "productNameCompany": "product_name",
              "productIds": "product_id", "crossSectoralStandards": "standard"}


def _column(path: str) -> str:
    for part in reversed(path.replace("[", ".").split(".")):
        if part in _COLUMN_OF:
            return _COLUMN_OF[part]
    return path


def _read_pcf_rows(frame: pd.DataFrame, grant: Grant, company_ids: list[str]) -> list[dict[str, Any]]:
    problems: list[tuple[str, str]] = []
    footprints = []
    for i, row in enumerate(frame.to_dict("records")):
        line = f"line {i + 2}"
        missing = [c for c, required, _ in PCF_COLUMNS if required and not str(row.get(c, "")).strip()]
        if missing:
            problems += [(line, f"column {c} is empty: {h}") for c, r, h in PCF_COLUMNS if c in missing]
            continue
        fp, found = check_footprint(_footprint({str(k): str(v) for k, v in row.items()}, grant, company_ids))
        if fp is None:
            problems += [(line, f"column {_column(path)}: {message}") for path, message in found]
        else:
            footprints.append(fp.to_json())
    if problems:
        raise UploadRefused(f"the filled template is refused ({len(problems)} problems); nothing was taken; fix "
                            "these lines and send the file again:", 422, problems)
    return footprints


def read_filled(data: bytes, grant: Grant, company_ids: list[str], name: str = "template.xlsx") -> dict[str, Any]:
    """A filled template as what :func:`submissions.receive` takes: ``{"footprints": [...]}`` or
    ``{"disclosure": {...}}``; refused line by line (:class:`~scope3lib.errors.UploadRefused`, 422)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        try:
            frame = read_sheet(path, "filled template")
        except FileFormatError as exc:
            raise UploadRefused(str(exc).replace(str(path), name), 422) from None
    expected = [c for c, _, _ in PCF_COLUMNS] if grant.kind == "pcf" else list(DISCLOSURE_COLUMNS)
    absent = [c for c in expected if c not in frame.columns]
    if absent:
        raise UploadRefused(f"{name}, line 1: the template's column(s) {', '.join(absent)} are missing; fill in the "
                            "template of the link without renaming its columns", 422)
    frame = frame[[c for c in frame.columns if c in expected]]
    frame = frame[frame.apply(lambda r: any(str(v).strip() for v in r), axis=1)]
    if frame.empty:
        raise UploadRefused(f"{name}: the template has no filled line", 422)
    if grant.kind == "pcf":
        return {"footprints": _read_pcf_rows(frame, grant, company_ids)}
    if len(frame) != 1:
        raise UploadRefused(f"{name}: a disclosure is one line (the year asked); the file has {len(frame)}", 422)
    problems = disclosures.check_rows(frame.assign(supplier="-"))
    if problems:
        raise UploadRefused(f"{name}: the disclosure is refused; nothing was taken:", 422,
                            [(f"line {i + 2}", w) for i, w in problems])
    return {"disclosure": {k: str(v) for k, v in frame.iloc[0].to_dict().items()}}


def company_ids(conn: Connection, supplier_id: int) -> list[str]:
    """The supplier's ids as PACT company URNs: LEI, DUNS, VAT number, else the platform's record."""
    row = conn.execute(sa.text("SELECT lei, duns, vat_number FROM suppliers WHERE id = :s"), {"s": supplier_id}).one()
    ids = [f"urn:lei:{row.lei}"] if row.lei else []
    ids += [f"urn:duns:{row.duns}"] if row.duns else []
    ids += [f"urn:vat:{row.vat_number}"] if row.vat_number else []
    return ids or [f"urn:scope3:supplier:{supplier_id}"]


def _parse(body: bytes, content_type: str, grant: Grant, ids: list[str]) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("application/json", ""):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UploadRefused(f"the body is not JSON: {exc}", 422) from None
        if isinstance(data, list):
            data = {"footprints": data}
        if not isinstance(data, dict) or not ({"footprints", "disclosure"} & set(data)):
            raise UploadRefused('send {"footprints": [PACT v3 ProductFootprints]} or {"disclosure": {...}} as JSON, '
                                "or the filled template", 422)
        return data
    if kind in (XLSX, "text/csv", "application/vnd.ms-excel", "application/octet-stream"):
        return read_filled(body, grant, ids, "template.xlsx" if kind == XLSX else "template.csv")
    raise UploadRefused(f"content type {kind!r} is not taken: application/json (footprints or a disclosure), "
                        f"text/csv or {XLSX} (the filled template)", 415)


def submit(engine: Engine, token: str, body: bytes, content_type: str) -> submissions.Submission:
    """A supplier's upload with a link: checked, stored as a pending submission and the link's use counted, in one
    transaction; refused whole (:class:`~scope3lib.errors.UploadRefused`) otherwise."""
    with engine.begin() as conn:
        g = grant(conn, token)
        if len(body) > g.max_bytes:
            raise UploadRefused(f"the upload is {len(body):,} bytes; this link takes at most {g.max_bytes:,}", 413)
        data = _parse(body, content_type, g, company_ids(conn, g.supplier_id))
        who = f"supplier:{g.supplier_id} via upload link {g.token_id}"
        channel: submissions.Channel = "upload" if content_type.startswith("application/json") else "template"
        try:
            sub = submissions.receive(conn, g.request_id, g.supplier_id, footprints=data.get("footprints"),
                                      disclosure=data.get("disclosure"), channel=channel, submitted_by=who,
                                      source="footprints")
        except FootprintRefused as exc:
            raise UploadRefused(f"{len(exc.refusals)} of {exc.total} footprints refused; nothing was taken", 422,
                                exc.problems) from None
        _use(conn, g.token_id)
    return sub


def submit_file(engine: Engine, request_id: int, path: str | Path, *, submitted_by: str) -> submissions.Submission:
    """A filled template handed in by a user of the tenant (the supplier e-mailed it, or phoned the figures in):
    received pending as ``submitted_by``'s, who therefore cannot approve it."""
    p = Path(path)
    if not p.is_file():
        raise UploadRefused(f"{p}: no such file", 422)
    with engine.begin() as conn:
        row = conn.execute(sa.text(
            "SELECT r.id, r.supplier_id, s.name, r.kind, r.product_ids, r.year, r.due_date FROM data_requests r "
            "JOIN suppliers s ON s.id = r.supplier_id WHERE r.id = :r"), {"r": request_id}).first()
        if row is None:
            raise UploadRefused(f"no data request {request_id} in this tenant (see `scope3 engage list SLUG`)", 422)
        g = Grant(0, int(row.id), int(row.supplier_id), str(row.name), str(row.kind), list(row.product_ids or []),
                  row.year, row.due_date, dt.datetime.now(dt.UTC), 1, p.stat().st_size)
        data = read_filled(p.read_bytes(), g, company_ids(conn, g.supplier_id), p.name)
        return submissions.receive(conn, g.request_id, g.supplier_id, footprints=data.get("footprints"),
                                   disclosure=data.get("disclosure"), channel="template", submitted_by=submitted_by,
                                   source=p.name)
