"""The integration API: ``scope3 api serve SLUG`` and the tenant's API keys (``scope3 apikey ...``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Settings
from . import admin_engine as _engine
from . import echo_json, main


@main.group("api")
def api() -> None:
    """A tenant's REST API (docs/api.md)."""


@api.command("serve")
@click.argument("slug")
@click.option("--host", default=None, help="Address to listen on (default SCOPE3_API_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default SCOPE3_API_PORT, 8780).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Serve HTTPS with this PEM certificate (chain); the PACT host (/pact) needs HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The PEM private key of --tls-cert.")
@click.pass_context
def serve(ctx: click.Context, slug: str, host: str | None, port: int | None, tls_cert: Path | None,
          tls_key: Path | None) -> None:
    """Serve tenant SLUG's API in the foreground, with the tenant's own database roles (from its secrets file,
    or SCOPE3_TENANT_DATABASE_URL and _READONLY when SCOPE3_TENANT names SLUG); never the admin URL."""
    from ..api.app import ApiConfig
    from ..api.app import serve as run

    settings: Settings = ctx.obj
    config = ApiConfig.from_environment(slug, settings)
    host, port = host or settings.api_host, port or settings.api_port
    scheme = "https" if tls_cert else "http"
    click.echo(f"API of tenant {slug} on {scheme}://{host}:{port}{config.prefix}/ (docs at /docs, PACT base URL "
               f"{scheme}://{host}:{port}{config.prefix}/pact); Ctrl-C stops it", err=True)
    if config.pact_allow_http:
        click.echo("WARNING: SCOPE3_PACT_ALLOW_HTTP is set: PACT answers over plain HTTP (development only)", err=True)
    elif not tls_cert:
        click.echo("note: without --tls-cert and --tls-key every /pact request is refused (PACT is HTTPS only)",
                   err=True)
    run(config, host, port, tls_cert, tls_key)


@main.group("apikey")
def apikey() -> None:
    """A tenant's API keys: create, list, revoke, rotate."""


@apikey.command("create")
@click.argument("slug")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write", "ingest"]), required=True,
              help="read: GET everything; write: read and change; ingest: a device key for /iot/ingest/.")
@click.option("--device", default=None, help="The device an ingest key writes for (required with --scope ingest).")
@click.option("--expires", default=None, help="Lifetime: 12h, 90d, 4w (default: never).")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@click.pass_context
def create(ctx: click.Context, slug: str, name: str, scope: str, device: str | None, expires: str | None,
           as_json: bool) -> None:
    """Issue API key NAME of tenant SLUG; the secret is printed this once (only its hash is stored)."""
    from ..api import keys

    issued = keys.create_key(_engine(ctx), slug, name, scope, device=device, expires=expires)
    _show(issued, as_json)


def _show(issued: object, as_json: bool) -> None:
    from ..api.keys import IssuedKey

    assert isinstance(issued, IssuedKey)
    if as_json:
        echo_json(issued.to_dict())
        return
    expiry = issued.expires_at.isoformat(timespec="seconds") if issued.expires_at else "never"
    click.echo(f"{issued.key}\n(key {issued.name!r}, prefix {issued.prefix}, scope {issued.scope}, expires {expiry}; "
               "shown only now: store it in your secret manager)", err=False)


@apikey.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Tenant SLUG's keys: prefix, scope, state (active, expired, revoked), expiry and when last used."""
    from ..api import keys

    rows = keys.list_keys(_engine(ctx), slug)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"tenant {slug} has no API keys (`scope3 apikey create {slug} NAME --scope read`)")
        return
    for r in rows:
        when = lambda v: v.strftime("%Y-%m-%d %H:%M") if v else "never"  # noqa: E731
        device = f" device {r['device']}" if r["device"] else ""
        click.echo(f"{r['prefix']}  {r['name']:<20} {r['scope']:<6}{device} {r['state']:<7} "
                   f"expires {when(r['expires_at'])}  last used {when(r['last_used_at'])}")


@apikey.command("revoke")
@click.argument("slug")
@click.argument("key")
@click.pass_context
def revoke(ctx: click.Context, slug: str, key: str) -> None:
    """Revoke KEY (a name or prefix) of tenant SLUG: refused from its next request."""
    from ..api import keys

    prefix = keys.revoke_key(_engine(ctx), slug, key)
    click.echo(f"revoked {prefix}")


@apikey.command("rotate")
@click.argument("slug")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the new key as JSON.")
@click.pass_context
def rotate(ctx: click.Context, slug: str, key: str, as_json: bool) -> None:
    """Revoke KEY (a name or prefix) and issue its successor with the same name, scope, device and lifetime."""
    from ..api import keys

    _show(keys.rotate_key(_engine(ctx), slug, key), as_json)
