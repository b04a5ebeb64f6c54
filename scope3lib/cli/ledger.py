"""Ledger commands: checkpoints, proofs, verification, and the offline audit.

``audit`` and ``audit-consistency`` never touch the database: they read files and a public key, and
this module imports the database half of the ledger (``scope3lib.ledger.log``) only inside the
commands that need it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import ledger
from ..config import Settings
from ..errors import Scope3Error
from . import echo_json, main

if TYPE_CHECKING:
    from sqlalchemy import Engine


@main.group("ledger")
def ledger_group() -> None:
    """Tamper-evident ledger of emission entries: checkpoints, proofs, verification, offline audit."""


def _engine(ctx: click.Context) -> Engine:
    from . import admin_engine

    return admin_engine(ctx)


@ledger_group.command("checkpoint")
@click.argument("slug")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the signed checkpoint to this file.")
@click.option("--every", type=click.FloatRange(1), default=None,
              help="Keep running: sign a checkpoint every this many seconds when the log has grown (the tenant "
                   "hub's `ledger` service runs this).")
@click.pass_context
def ledger_checkpoint(ctx: click.Context, slug: str, out: Path | None, every: float | None) -> None:
    """Sign a checkpoint of tenant SLUG's log (tree size, root hash, time) and print it.

    The key is generated on first use in DATA_DIR/tenants/SLUG/ledger_ed25519.pem (mode 0600).
    Refused when the log no longer matches what was recorded.
    """
    from ..ledger import log as ledger_log

    settings: Settings = ctx.obj
    engine = _engine(ctx)
    if every is None:
        signed = ledger_log.checkpoint(engine, settings.data_dir, slug)
        if out is not None:
            out.write_text(signed.note)
        click.echo(signed.note, nl=False)
        return
    click.echo(f"ledger of {slug}: a checkpoint every {every:g}s while the log grows", err=True)
    while True:
        try:
            signed_size = ledger_log.checkpoint_if_grown(engine, settings.data_dir, slug)
            if signed_size is not None:
                click.echo(f"signed a checkpoint of {slug}'s log at size {signed_size:,}", err=True)
        except Scope3Error as exc:  # an inconsistent log is reported, never signed over; keep watching
            click.echo(f"error: {exc}", err=True)
        time.sleep(every)


@ledger_group.command("public-key")
@click.argument("slug")
@click.option("--format", "fmt", type=click.Choice(["pem", "note"]), default="pem", show_default=True,
              help="pem: SubjectPublicKeyInfo; note: the signed-note verifier key name+id+key.")
@click.pass_context
def ledger_public_key(ctx: click.Context, slug: str, fmt: str) -> None:
    """Print tenant SLUG's checkpoint-signing public key, for auditors to pin."""
    from ..ledger import log as ledger_log

    settings: Settings = ctx.obj
    key = ledger_log.public_key(_engine(ctx), settings.data_dir, slug)
    if fmt == "pem":
        click.echo(ledger.public_key_pem(key.public_key), nl=False)
    else:
        click.echo(ledger.verifier_key(key.name or "", key.public_key))


@ledger_group.command("prove")
@click.argument("slug")
@click.argument("entry_id", type=click.IntRange(1))
@click.option("--leaf", "leaf_index", type=click.IntRange(0), default=None,
              help="Prove this leaf of the entry (an earlier version) instead of its last change.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for checkpoint.txt, proof.json and entry.json [default: ledger-SLUG-entry-ID].")
@click.pass_context
def ledger_prove(ctx: click.Context, slug: str, entry_id: int, leaf_index: int | None, out: Path | None) -> None:
    """Write the files that prove entry ENTRY_ID's last change is in SLUG's latest signed checkpoint."""
    from ..ledger import log as ledger_log

    bundle = ledger_log.prove(_engine(ctx), slug, entry_id, leaf_index)
    for path in bundle.write(out or Path(f"ledger-{slug}-entry-{entry_id}")):
        click.echo(str(path))


_ENTRIES_SQL = """
SELECT e.id, e.category, e.period_start, e.kg_co2e, s.name AS supplier, d.device_key AS device,
       l.leaf_index, l.event
  FROM emission_entries e
  LEFT JOIN suppliers s ON s.id = e.supplier_id
  LEFT JOIN devices d ON d.id = e.device_id
  LEFT JOIN LATERAL (SELECT leaf_index, event FROM ledger_leaves
                      WHERE tenant_id = e.tenant_id AND entry_id = e.id
                        AND event IN ('create', 'correct', 'recalculate', 'delete')
                      ORDER BY leaf_index DESC LIMIT 1) l ON true
 WHERE e.tenant_id = :t
 ORDER BY e.id DESC
 LIMIT :n"""


@ledger_group.command("entries")
@click.argument("slug")
@click.option("--limit", type=click.IntRange(1), default=10, show_default=True,
              help="How many entries to list, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_context
def ledger_entries(ctx: click.Context, slug: str, limit: int, as_json: bool) -> None:
    """List SLUG's newest emission entries with the ids `ledger prove` takes.

    Each line: entry id, category, period start, kg CO2e, the entry's last change in the log (leaf and
    event), whether the latest signed checkpoint covers that change (`prove` needs it; `scope3 ledger
    checkpoint SLUG` signs a new one), and the supplier and meter it is about.
    """
    import sqlalchemy as sa

    from .. import tenancy

    with _engine(ctx).connect() as conn:
        tid = tenancy.tenant_id(conn, slug)
        signed = conn.scalar(sa.text("SELECT tree_size FROM ledger_checkpoints WHERE tenant_id = :t "
                                     "ORDER BY id DESC LIMIT 1"), {"t": tid})
        rows = conn.execute(sa.text(_ENTRIES_SQL), {"t": tid, "n": limit}).mappings().all()
    listed = [{"id": r["id"], "category": r["category"], "period_start": r["period_start"],
               "kg_co2e": float(r["kg_co2e"]), "leaf_index": r["leaf_index"], "event": r["event"],
               "signed": r["leaf_index"] is not None and signed is not None and r["leaf_index"] < signed,
               "supplier": r["supplier"], "device": r["device"]} for r in rows]
    if as_json:
        echo_json(listed)
        return
    if not listed:
        click.echo(f"tenant {slug} has no emission entries")
        return
    for e in listed:
        leaf = "no leaf" if e["leaf_index"] is None else f"leaf {e['leaf_index']} ({e['event']})"
        source = ", ".join(str(x) for x in (e["supplier"], e["device"]) if x)
        click.echo(f"{e['id']:>10}  cat {e['category']:<2}  {e['period_start']}  {e['kg_co2e']:>14,.3f} kg  "
                   f"{leaf:<24} {'signed' if e['signed'] else 'unsigned':<8}  {source}")
    if not all(e["signed"] for e in listed):
        click.echo(f"unsigned: no signed checkpoint covers the last change yet; `scope3 ledger checkpoint {slug}` "
                   "signs one", err=True)


@ledger_group.command("prove-consistency")
@click.argument("slug")
@click.argument("old_size", type=click.IntRange(0))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for old-checkpoint.txt, checkpoint.txt, consistency.json "
                   "[default: ledger-SLUG-consistency-OLD_SIZE].")
@click.pass_context
def ledger_prove_consistency(ctx: click.Context, slug: str, old_size: int, out: Path | None) -> None:
    """Prove that SLUG's latest checkpoint extends its checkpoint of OLD_SIZE leaves (nothing rewritten)."""
    from ..ledger import log as ledger_log

    bundle = ledger_log.prove_consistency(_engine(ctx), slug, old_size)
    for path in bundle.write(out or Path(f"ledger-{slug}-consistency-{old_size}")):
        click.echo(str(path))


@ledger_group.command("verify")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ledger_verify(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Recompute SLUG's whole log against its entries and signed checkpoints; exit 1 on any discrepancy."""
    from ..ledger import log as ledger_log

    report = ledger_log.verify(_engine(ctx), slug)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if not report.ok:
        ctx.exit(1)


def _key(text: str) -> ledger.VerifierKey:
    path = Path(text)
    return ledger.load_verifier_key(path.read_text() if path.is_file() else text)


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_KEY_HELP = "The tenant's public key: a PEM file, or the note verifier key (name+id+key) or a file holding it."


@ledger_group.command("audit")
@click.argument("checkpoint", type=_FILE)
@click.argument("proof", type=_FILE)
@click.argument("entry", type=_FILE)
@click.option("--public-key", "public_key", required=True, help=_KEY_HELP)
def ledger_audit(checkpoint: Path, proof: Path, entry: Path, public_key: str) -> None:
    """Check offline, without any database, that ENTRY is in the log CHECKPOINT signs, using PROOF."""
    result = ledger.audit_entry(checkpoint.read_text(), ledger.InclusionProof.from_json(proof.read_bytes()),
                                entry.read_bytes(), _key(public_key))
    click.echo(result.summary())


@ledger_group.command("audit-consistency")
@click.argument("old_checkpoint", type=_FILE)
@click.argument("new_checkpoint", type=_FILE)
@click.argument("proof", type=_FILE)
@click.option("--public-key", "public_key", required=True, help=_KEY_HELP)
def ledger_audit_consistency(old_checkpoint: Path, new_checkpoint: Path, proof: Path, public_key: str) -> None:
    """Check offline that NEW_CHECKPOINT's log extends OLD_CHECKPOINT's: no leaf removed or rewritten."""
    old, new = ledger.audit_consistency(old_checkpoint.read_text(), new_checkpoint.read_text(),
                                        ledger.ConsistencyProof.from_json(proof.read_bytes()), _key(public_key))
    click.echo(f"OK: {new.origin} at {new.tree_size} leaves extends its checkpoint of {old.tree_size} leaves")
