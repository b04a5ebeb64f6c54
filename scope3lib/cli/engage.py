"""`scope3 engage ...`: data requests to suppliers, their links and templates, and decisions on what they send.

These commands act as the tenant's own database role (from its secrets file), exactly as a notebook does;
the library behind them is :mod:`scope3lib.engagement`. A decision is taken in the name of ``--user`` (default:
the person running the command), who must be a user of the tenant and not the submitter.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .. import frames
from ..engagement import pact as engagement_pact
from ..engagement import requests, submissions, uploads
from ..suppliers import records
from . import echo_json, main
from .inventory import _tenant_engine


@main.group("engage")
def engage_group() -> None:
    """Supplier engagement: ask suppliers for data, remind them, approve or reject what they send."""


def _show_sent(sent: list[requests.Sent], as_json: bool) -> None:
    if as_json:
        echo_json([s.to_dict() for s in sent])
        return
    for s in sent:
        click.echo(f"request {s.request_id} to {s.supplier} <{s.contact_email or 'no contact e-mail'}> by {s.channel}"
                   + (f"; link (shown once, valid until {s.expires_at:%Y-%m-%d}): {s.upload_url}" if s.upload_url
                      else ""))
        click.echo("--- message ---\n" + s.message + "\n---------------")


@engage_group.command("request")
@click.argument("slug")
@click.argument("supplier")
@click.option("--product", "products", multiple=True, help="A product id to ask the footprint of (repeatable).")
@click.option("--year", type=click.IntRange(1990, 2100), default=None, help="Ask for this year's disclosure.")
@click.option("--due", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Due date, YYYY-MM-DD.")
@click.option("--channel", type=click.Choice(["upload", "template", "pact"]), default="upload", show_default=True,
              help="upload: a link for JSON or the template; template: the spreadsheet, by the same link; pact: "
                   "the supplier's PACT host (--pact-client).")
@click.option("--pact-client", default=None, help="The supplier's PACT partner (`scope3 pact client list`).")
@click.option("--note", default=None, help="Kept with the request.")
@click.option("--url", default=None, help="The API's address for suppliers (default: SCOPE3_ENGAGE_PUBLIC_URL).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def request_cmd(ctx: click.Context, slug: str, supplier: str, products: tuple[str, ...], year: int | None,
                due: dt.datetime, channel: str, pact_client: str | None, note: str | None, url: str | None,
                as_json: bool) -> None:
    """Ask SUPPLIER (id, name or identifier) for product footprints or an annual disclosure; prints the message
    to send and the upload link (shown only once)."""
    engine = _tenant_engine(ctx, slug)
    if channel == "pact":
        engagement_pact.events_url(url)  # refused before anything is stored when partners could not answer us
    sent = requests.create(engine, supplier, due=due.date(), products=list(products), year=year,
                           channel=channel, pact_client=pact_client, note=note, url=url)
    # A PACT request goes out at once, as the engagement lead expects; one that could not be delivered stays
    # open and unsent, and `scope3 engage send` tries again.
    delivered = engagement_pact.send(engine, slug, sent.request_id, url=url) if channel == "pact" else []
    if as_json:
        echo_json([{**sent.to_dict(), **{k: v for d in delivered for k, v in
                                         (("pact_event_id", d.event_id), ("pact_error", d.error))}}])
        return
    _show_sent([sent], False)
    for d in delivered:
        click.echo(d.sentence())


@engage_group.command("send")
@click.argument("slug")
@click.argument("request_id", type=int, required=False)
@click.option("--url", default=None, help="The API's https:// address as partners reach it, where they answer "
                                          "(<url>/pact/3/events; default: SCOPE3_ENGAGE_PUBLIC_URL).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def send_cmd(ctx: click.Context, slug: str, request_id: int | None, url: str | None, as_json: bool) -> None:
    """Send PACT data requests to the suppliers' PACT hosts as RequestCreated events: REQUEST_ID (again), or
    every open one not sent yet (say, because the partner was down). Exits 1 when one could not be sent."""
    delivered = engagement_pact.send(_tenant_engine(ctx, slug), slug, request_id, url=url)
    if as_json:
        echo_json([d.__dict__ for d in delivered])
    elif not delivered:
        click.echo("no PACT data request waits to be sent")
    for d in delivered if not as_json else []:
        click.echo(d.sentence())
    if any(d.error for d in delivered):
        ctx.exit(1)


@engage_group.command("list")
@click.argument("slug")
@click.option("--status", type=click.Choice(["sent", "answered", "overdue", "rejected"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, slug: str, status: str | None, as_json: bool) -> None:
    """The data requests with their status (overdue ones marked), reminders and submissions."""
    df = requests.requests(_tenant_engine(ctx, slug), status)
    if as_json:
        echo_json(frames.rows(df))
    elif df.empty:
        click.echo(f"{slug} has no data requests yet: `scope3 engage request {slug} SUPPLIER --product ID --due DATE`")
    else:
        click.echo(df[["id", "supplier", "kind", "products", "year", "channel", "due_date", "status", "reminders",
                       "pending", "approved", "rejected"]].to_string(index=False))


@engage_group.command("remind")
@click.argument("slug")
@click.argument("request_id", type=int, required=False)
@click.option("--url", default=None, help="The API's address for suppliers (default: SCOPE3_ENGAGE_PUBLIC_URL).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def remind_cmd(ctx: click.Context, slug: str, request_id: int | None, url: str | None, as_json: bool) -> None:
    """Remind the supplier of REQUEST_ID, or of every overdue or rejected request: a new link each (the old one
    stops working) and the message to send; a PACT request is sent to the supplier's host again."""
    engine = _tenant_engine(ctx, slug)
    sent = requests.remind(engine, request_id, url=url)
    if not sent and not as_json:
        click.echo("no overdue or rejected request to remind")
    _show_sent(sent, as_json)
    # A PACT request is reminded by sending it again: a new RequestCreated event to the supplier's host.
    for s in sent:
        if s.channel == "pact":
            for d in engagement_pact.send(engine, slug, s.request_id, url=url):
                click.echo(d.sentence(), err=as_json)


@engage_group.command("template")
@click.argument("slug")
@click.argument("request_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it (default: scope3-request-ID.FORMAT).")
@click.pass_context
def template_cmd(ctx: click.Context, slug: str, request_id: int, fmt: str, out: Path | None) -> None:
    """Write the spreadsheet template of a request, to send the supplier."""
    path = out or Path(f"scope3-request-{request_id}.{fmt}")
    path.write_bytes(requests.template_for(_tenant_engine(ctx, slug), request_id, fmt))
    click.echo(str(path))


@engage_group.command("submit")
@click.argument("slug")
@click.argument("request_id", type=int)
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_context
def submit_cmd(ctx: click.Context, slug: str, request_id: int, path: str) -> None:
    """Hand in a template the supplier filled (e-mailed, say) in your name: it lands pending, and another user
    decides on it."""
    sub = uploads.submit_file(_tenant_engine(ctx, slug), request_id, path, submitted_by=records.actor())
    click.echo(f"submission {sub.id} ({sub.kind}) is pending: another user of {slug} approves or rejects it")


@engage_group.command("submissions")
@click.argument("slug")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def submissions_cmd(ctx: click.Context, slug: str, status: str | None, as_json: bool) -> None:
    """What suppliers sent, newest first, and the decisions."""
    df = submissions.submissions(_tenant_engine(ctx, slug), status)
    if as_json:
        echo_json(frames.rows(df))
    elif df.empty:
        click.echo("no submissions" + (f" {status}" if status else ""))
    else:
        click.echo(df[["id", "request_id", "supplier", "kind", "channel", "status", "submitted_by", "decided_by",
                       "reason"]].to_string(index=False))


@engage_group.command("approve")
@click.argument("slug")
@click.argument("submission_id", type=int)
@click.option("--reason", default=None, help="Why, for the ledger (what was checked).")
@click.option("--user", default=None, help="The tenant user deciding (default: you).")
@click.pass_context
def approve_cmd(ctx: click.Context, slug: str, submission_id: int, reason: str | None, user: str | None) -> None:
    """Approve a pending submission (not your own): it is used at once and the ledger records the decision."""
    click.echo(submissions.approve(_tenant_engine(ctx, slug), submission_id, decided_by=user,
                                   reason=reason).sentence())


@engage_group.command("reject")
@click.argument("slug")
@click.argument("submission_id", type=int)
@click.option("--reason", required=True, help="Why (the supplier is told it; the ledger records it).")
@click.option("--user", default=None, help="The tenant user deciding (default: you).")
@click.pass_context
def reject_cmd(ctx: click.Context, slug: str, submission_id: int, reason: str, user: str | None) -> None:
    """Reject a pending submission (not your own) with a reason; `remind` then sends the supplier a new link."""
    click.echo(submissions.reject(_tenant_engine(ctx, slug), submission_id, decided_by=user,
                                  reason=reason).sentence())
