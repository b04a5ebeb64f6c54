"""`scope3 suppliers ...` and `scope3 spend ...`: a company's supplier records and ERP spend extracts.

These commands act as the tenant's own database role (from its secrets file), exactly as a notebook does;
the library behind them is :mod:`scope3lib.suppliers`.
"""

from __future__ import annotations

import click
import pandas as pd

from .. import frames
from ..errors import InvalidArgument, RowsRefused
from ..suppliers import disclosures, records, spend
from . import echo_json, main
from .inventory import _tenant_engine

_SHOWN = ["id", "name", "country", "region", "naics_code", "annual_spend", "spend_currency", "spend_year", "lei",
          "duns", "vat_number", "contact_email"]


def _refused(ctx: click.Context, exc: RowsRefused) -> None:
    click.echo(f"error: {exc}", err=True)
    ctx.exit(1)


@main.group("suppliers")
def suppliers_group() -> None:
    """A tenant's supplier records: import, list, show, update, merge, archive."""


@suppliers_group.command("import")
@click.argument("slug")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--reason", default=None, help="Kept in each record's history (default: the file's name).")
@click.pass_context
def suppliers_import(ctx: click.Context, slug: str, path: str, reason: str | None) -> None:
    """Import a supplier file (CSV or .xlsx: name, country, region, naics_code, annual_spend, spend_currency,
    spend_year, lei, duns, vat_number, contact_email, vendor_id), all or nothing."""
    try:
        r = records.import_suppliers(_tenant_engine(ctx, slug), path, reason=reason)
    except RowsRefused as exc:
        _refused(ctx, exc)
        return
    click.echo(f"{slug}: {r.created} suppliers created, {r.updated} updated, {r.unchanged} unchanged")


@suppliers_group.command("list")
@click.argument("slug")
@click.option("--archived", is_flag=True, help="Include archived and merged records.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def suppliers_list(ctx: click.Context, slug: str, archived: bool, as_json: bool) -> None:
    """The tenant's suppliers, by name."""
    df = records.suppliers(_tenant_engine(ctx, slug), include_archived=archived)
    shown = df[_SHOWN + (["archived_at", "merged_into"] if archived else [])]
    if as_json:
        echo_json(frames.rows(shown))
    elif shown.empty:
        click.echo(f"{slug} has no suppliers yet: `scope3 suppliers import {slug} FILE`")
    else:
        click.echo(shown.to_string(index=False, na_rep=""))


@suppliers_group.command("duplicates")
@click.argument("slug")
@click.pass_context
def suppliers_duplicates(ctx: click.Context, slug: str) -> None:
    """Records that look like one company (the same normalised name): candidates for `suppliers merge`."""
    df = records.duplicates(_tenant_engine(ctx, slug))
    click.echo(df.to_string(index=False, na_rep="") if len(df) else f"{slug}: no two records look like one company")


@suppliers_group.command("show")
@click.argument("slug")
@click.argument("supplier")
@click.pass_context
def suppliers_show(ctx: click.Context, slug: str, supplier: str) -> None:
    """One supplier (an id, a name or an identifier): its fields, aliases, disclosures and history."""
    r = records.show(_tenant_engine(ctx, slug), supplier)
    for f in [*_SHOWN, "archived_at", "merged_into", "created_at", "updated_at"]:
        click.echo(f"{f:14} {'' if r[f] is None else r[f]}")
    aliases = ", ".join(f"{a['alias']} ({a['kind']})" for a in r["aliases"]) or "-"
    click.echo(f"{'aliases':14} {aliases}")
    click.echo(f"{'spend lines':14} {r['spend_lines']:,}")
    if len(r["disclosures"]):
        click.echo("disclosures:\n" + r["disclosures"].to_string(index=False))
    click.echo("history:")
    for h in r["history"].itertuples():
        changes = "; ".join(f"{k}: {b!r} -> {a!r}" for k, (b, a) in h.changes.items()) if h.action != "create" else ""
        click.echo(f"  {h.changed_at:%Y-%m-%d %H:%M:%S} {h.actor} ({h.role_name}) {h.action}"
                   + (f" [{h.reason}]" if h.reason else "") + (f": {changes}" if changes else ""))


def _fields(pairs: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep:
            raise InvalidArgument(f"--set {pair!r}: write FIELD=VALUE (an empty VALUE clears the field)")
        out[field.strip()] = value.strip() or None
    return out


@suppliers_group.command("update")
@click.argument("slug")
@click.argument("supplier")
@click.option("--set", "pairs", multiple=True, required=True, help="FIELD=VALUE; repeat for several fields.")
@click.option("--reason", default=None, help="Kept in the record's history.")
@click.pass_context
def suppliers_update(ctx: click.Context, slug: str, supplier: str, pairs: tuple[str, ...], reason: str | None) -> None:
    """Change fields of one supplier (checked as an import checks them)."""
    r = records.update(_tenant_engine(ctx, slug), supplier, reason=reason, **_fields(pairs))
    click.echo(f"updated supplier {r['id']} ({r['name']})")


@suppliers_group.command("merge")
@click.argument("slug")
@click.argument("keep")
@click.argument("other")
@click.option("--reason", required=True, help="Why they are one company (kept in both histories and the ledger).")
@click.pass_context
def suppliers_merge(ctx: click.Context, slug: str, keep: str, other: str, reason: str) -> None:
    """Merge supplier OTHER into KEEP (two records of one company)."""
    r = records.merge(_tenant_engine(ctx, slug), keep, other, reason=reason)
    click.echo(f"merged {other} into supplier {r['id']} ({r['name']})")


@suppliers_group.command("archive")
@click.argument("slug")
@click.argument("supplier")
@click.option("--reason", default=None, help="Kept in the record's history.")
@click.option("--restore", is_flag=True, help="Bring an archived supplier back instead.")
@click.pass_context
def suppliers_archive(ctx: click.Context, slug: str, supplier: str, reason: str | None, restore: bool) -> None:
    """Archive a supplier (it keeps its entries and history), or restore it."""
    act = records.restore if restore else records.archive
    r = act(_tenant_engine(ctx, slug), supplier, reason=reason)
    click.echo(f"{'restored' if restore else 'archived'} supplier {r['id']} ({r['name']})")


@suppliers_group.command("disclosures")
@click.argument("slug")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace a supplier's year already recorded.")
@click.pass_context
def suppliers_disclosures(ctx: click.Context, slug: str, path: str, replace: bool) -> None:
    """Import supplier-reported figures (supplier, year, scope1_kg, scope2_kg, upstream_kg, revenue, currency,
    verification, source_document); their spend is re-priced at once."""
    try:
        n = disclosures.import_file(_tenant_engine(ctx, slug), path, replace=replace)
    except RowsRefused as exc:
        _refused(ctx, exc)
        return
    click.echo(f"{slug}: {n} disclosures recorded; the open months of those suppliers' spend are re-priced")


@main.group("spend")
def spend_group() -> None:
    """ERP spend extracts: import, review what is unclassified or unmatched, confirm, trace."""


@spend_group.command("import")
@click.argument("slug")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--mapping", default="default", show_default=True,
              help="Name of the tenant's saved column mapping (one per ERP export).")
@click.option("--column", "pairs", multiple=True, help="FIELD=HEADER, e.g. amount='Betrag'; saved with the mapping.")
@click.option("--decimal", type=click.Choice([".", ","]), default=None, help="Decimal mark (detected when not given).")
@click.option("--date-format", default=None, help="e.g. %d.%m.%Y (detected when not given).")
@click.option("--currency", default=None, help="Currency of every line, for an extract without a currency column.")
@click.option("--replace", is_flag=True, help="A corrected extract: replace the lines already imported for its months.")
@click.option("--reason", default=None, help="Why (required with --replace; recorded in the ledger).")
@click.pass_context
def spend_import(ctx: click.Context, slug: str, path: str, mapping: str, pairs: tuple[str, ...], decimal: str | None,
                 date_format: str | None, currency: str | None, replace: bool, reason: str | None) -> None:
    """Import an AP or GL extract (CSV or .xlsx) into tenant SLUG, all or nothing."""
    columns = {k: v for k, v in _fields(pairs).items() if v} if pairs else None
    try:
        r = spend.import_extract(_tenant_engine(ctx, slug), path, mapping=mapping, columns=columns, decimal=decimal,
                                 date_format=date_format, currency=currency, replace=replace, reason=reason)
    except RowsRefused as exc:
        _refused(ctx, exc)
        return
    click.echo(r.sentence())


def _table(df: pd.DataFrame, column: str) -> str:
    shown = df.copy()
    shown[column] = [", ".join(f"{a} {b} ({c:.2f})" for a, b, c in items) or "-" for items in shown[column]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:,.2f}")


@spend_group.command("unclassified")
@click.argument("slug")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def spend_unclassified(ctx: click.Context, slug: str, limit: int) -> None:
    """Lines no rule classifies, largest spend first, with ranked sector suggestions."""
    df = spend.unclassified(_tenant_engine(ctx, slug), limit)
    click.echo(_table(df, "suggestions") if len(df) else "every imported line is classified")


@spend_group.command("unmatched")
@click.argument("slug")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def spend_unmatched(ctx: click.Context, slug: str, limit: int) -> None:
    """Vendors no supplier matched, largest spend first, with candidate suppliers (never applied by themselves)."""
    df = spend.unmatched(_tenant_engine(ctx, slug), limit)
    click.echo(_table(df, "candidates") if len(df) else "every vendor is matched to a supplier")


@spend_group.command("classify")
@click.argument("slug")
@click.argument("kind", type=click.Choice(["commodity", "gl_account", "vendor", "keyword"]))
@click.argument("pattern")
@click.option("--category", type=int, required=True, help="GHG Protocol category (1-15).")
@click.option("--naics", required=True, help="NAICS code with a spend-based factor.")
@click.option("--note", default=None)
@click.pass_context
def spend_classify(ctx: click.Context, slug: str, kind: str, pattern: str, category: int, naics: str,
                   note: str | None) -> None:
    """Add a classification rule and re-price the open months it changes."""
    rule = spend.confirm_sector(_tenant_engine(ctx, slug), kind, pattern, category, naics, note=note)
    click.echo(f"rule {rule}: {kind} {pattern!r} -> category {category}, NAICS {naics}")


@spend_group.command("match")
@click.argument("slug")
@click.argument("vendor_key")
@click.argument("supplier")
@click.pass_context
def spend_match(ctx: click.Context, slug: str, vendor_key: str, supplier: str) -> None:
    """Match an extract's vendor (VENDOR_KEY from `spend unmatched`) to SUPPLIER; it becomes an alias."""
    sid = spend.confirm_match(_tenant_engine(ctx, slug), vendor_key, supplier)
    click.echo(f"vendor {vendor_key} matched to supplier {sid}")


@spend_group.command("trace")
@click.argument("slug")
@click.argument("entry_id", type=int)
@click.pass_context
def spend_trace(ctx: click.Context, slug: str, entry_id: int) -> None:
    """The extract lines behind emission entry ENTRY_ID (file, line, hash)."""
    df = spend.trace(_tenant_engine(ctx, slug), entry_id)
    click.echo(df.to_string(index=False) if len(df) else f"entry {entry_id} does not come from a spend extract")


@spend_group.command("imports")
@click.argument("slug")
@click.pass_context
def spend_imports(ctx: click.Context, slug: str) -> None:
    """The extracts imported, newest first."""
    df = spend.imports(_tenant_engine(ctx, slug))
    click.echo(df.to_string(index=False) if len(df) else f"{slug} has imported no extract yet")
