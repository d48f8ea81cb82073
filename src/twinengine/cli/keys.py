"""``twinengine keys``: API keys with scopes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from twinengine.cli._common import console, context_of, handle_errors
from twinengine.security import service
from twinengine.security.keys import SCOPES

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="what the key is for")],
    scope: Annotated[list[str], typer.Option(help=f"repeatable: {', '.join(SCOPES)}")],
    publishable: Annotated[
        bool, typer.Option(help="a browser key: only search:read and events:write")
    ] = False,
    origin: Annotated[
        list[str] | None, typer.Option(help="allowed origin for a publishable key (repeatable)")
    ] = None,
) -> None:
    """Create a key and print its secret (shown once)."""
    key = service.create_key(
        context_of(ctx).db,
        name=name,
        scopes=scope,
        kind="publishable" if publishable else "secret",
        allowed_origins=origin,
    )
    console.print(f"created key [bold]{key.id}[/] ({key.kind}, scopes {', '.join(key.scopes)})")
    console.print(key.key, highlight=False, soft_wrap=True)


@app.command("list")
@handle_errors
def list_(ctx: typer.Context) -> None:
    """List keys (never their secrets)."""
    table = Table()
    for col in ("id", "name", "kind", "scopes", "origins", "created", "revoked"):
        table.add_column(col)
    for k in service.list_keys(context_of(ctx).db):
        table.add_row(
            k.id,
            k.name,
            k.kind,
            ",".join(k.scopes),
            ",".join(k.allowed_origins),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
@handle_errors
def revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key by id."""
    service.revoke_key(context_of(ctx).db, key_id=key_id)
    console.print(f"revoked {key_id}")
