"""PACT v3 exchange: ``scope3 pact client ...`` (partners' credentials) and ``scope3 pact footprints ...`` (what
the tenant publishes); docs/pact.md."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InvalidArgument
from . import admin_engine as _engine
from . import echo_json, main


@main.group("pact")
def pact() -> None:
    """PACT v3 product-footprint exchange: partners' credentials and published footprints (docs/pact.md)."""


@pact.group("client")
def client() -> None:
    """Partners' OAuth 2 client credentials for the tenant's PACT host."""


@client.command("create")
@click.argument("slug")
@click.argument("name")
@click.option("--partner-url", default=None,
              help="The partner's own PACT base URL (https://...), where answers to its requests go.")
@click.option("--partner-client-id", default=None, help="The client id the partner issued to this tenant.")
@click.option("--partner-client-secret-env", default=None, metavar="VAR",
              help="Environment variable holding the client secret the partner issued (kept out of shell history).")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@click.pass_context
def client_create(ctx: click.Context, slug: str, name: str, partner_url: str | None, partner_client_id: str | None,
                  partner_client_secret_env: str | None, as_json: bool) -> None:
    """Issue PACT client credentials to partner NAME of tenant SLUG; the secret is printed this once."""
    import os

    from ..pact import clients

    secret = None
    if partner_client_secret_env:
        secret = os.environ.get(partner_client_secret_env)
        if not secret:
            raise InvalidArgument(f"environment variable {partner_client_secret_env} is unset or empty")
    issued = clients.create_client(_engine(ctx), slug, name, partner_url=partner_url,
                                   partner_client_id=partner_client_id, partner_client_secret=secret)
    if as_json:
        echo_json(issued.to_dict())
        return
    click.echo(f"client_id:     {issued.client_id}\nclient_secret: {issued.client_secret}\n"
               f"(client {name!r}; the secret is shown only now: hand it to the partner over a secure channel)")


@client.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def client_list(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Tenant SLUG's PACT clients: client_id, name, state, partner URL, last used."""
    from ..pact import clients

    rows = clients.list_clients(_engine(ctx), slug)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"tenant {slug} has no PACT clients (`scope3 pact client create {slug} NAME`)")
    for r in rows:
        used = r["last_used_at"].strftime("%Y-%m-%d %H:%M") if r["last_used_at"] else "never"
        click.echo(f"{r['client_id']}  {r['name']:<24} {r['state']:<7} last used {used}"
                   + (f"  partner {r['partner_url']}" if r["partner_url"] else ""))


@client.command("revoke")
@click.argument("slug")
@click.argument("client_id")
@click.pass_context
def client_revoke(ctx: click.Context, slug: str, client_id: str) -> None:
    """Revoke CLIENT_ID (or a client's name) of tenant SLUG: its tokens stop working at once."""
    from ..pact import clients

    click.echo(f"revoked {clients.revoke_client(_engine(ctx), slug, client_id)}")


@client.command("partner")
@click.argument("slug")
@click.argument("client_id")
@click.option("--url", "partner_url", required=True, help="The partner's own PACT base URL (https://...).")
@click.option("--client-id", "partner_client_id", required=True, help="The client id the partner issued to SLUG.")
@click.option("--client-secret-env", "secret_env", required=True, metavar="VAR",
              help="Environment variable holding the client secret the partner issued (kept out of shell history).")
@click.pass_context
def client_partner(ctx: click.Context, slug: str, client_id: str, partner_url: str, partner_client_id: str,
                   secret_env: str) -> None:
    """Record where CLIENT_ID's own PACT host is and the credentials it issued to tenant SLUG."""
    import os

    from ..pact import clients

    secret = os.environ.get(secret_env)
    if not secret:
        raise InvalidArgument(f"environment variable {secret_env} is unset or empty")
    done = clients.set_partner(_engine(ctx), slug, client_id, partner_url, partner_client_id, secret)
    click.echo(f"{done}: partner host {partner_url}")


@pact.group("footprints")
def footprints() -> None:
    """The product footprints tenant SLUG publishes over PACT."""


@footprints.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def footprints_import(ctx: click.Context, slug: str, file: Path) -> None:
    """Publish the PACT v3 ProductFootprints of FILE (a JSON array); all or nothing, refusals name each field."""
    from ..pact import store

    try:
        items = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"{file}: not JSON ({error}); give a JSON array of PACT v3 ProductFootprints") from None
    done = store.import_footprints(_engine(ctx), slug, items, source=file.name)
    click.echo(f"{file.name}: {done.added} footprints published, {done.unchanged} already published unchanged, "
               f"{done.deprecated} earlier footprints deprecated")
    for path, message in done.notes:
        click.echo(f"  note: {path}: {message}")


@footprints.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def footprints_list(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Tenant SLUG's published footprints: id, status, product, validity."""
    from ..pact import store

    rows = store.summary(_engine(ctx), slug)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"tenant {slug} publishes no footprints (`scope3 pact footprints import {slug} FILE.json`)")
    for r in rows:
        click.echo(f"{r['id']}  {r['status']:<10} {r['product']:<30} {r['product_ids'][0]}  "
                   f"valid {r['valid_from']:%Y-%m-%d}..{r['valid_until']:%Y-%m-%d}")


@footprints.command("deprecate")
@click.argument("slug")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def footprints_deprecate(ctx: click.Context, slug: str, ids: tuple[str, ...]) -> None:
    """Mark footprints IDS of tenant SLUG Deprecated (they stay listed and fetchable)."""
    from ..pact import store

    click.echo(f"{store.deprecate(_engine(ctx), slug, ids)} footprints deprecated")


@pact.command("exchanges")
@click.argument("slug")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def exchanges(ctx: click.Context, slug: str, limit: int, as_json: bool) -> None:
    """Tenant SLUG's latest PACT exchanges in and out: tokens, lists, gets, events."""
    from ..pact import clients

    rows = clients.exchanges(_engine(ctx), slug, limit)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['at']:%Y-%m-%d %H:%M:%S} {r['direction']:<3} {r['action']:<6} {r['status']:<7} "
                   f"{r['http_status'] or '':<4} {r['partner']}  {r['event_type'] or ''} "
                   f"{' '.join((r['error'] or '').split())[:160]}")
