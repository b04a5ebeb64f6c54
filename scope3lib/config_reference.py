"""The configuration reference, ``docs/configuration.md``, generated from the classes that declare the settings.

Every environment variable and every ``hub.yaml`` key is declared once, with its default and help text, in
:class:`scope3lib.config.Settings`, :class:`scope3lib.config.TenantSettings` and
:class:`scope3lib.hub.settings.HubFile`; this module renders them as Markdown. ``scope3 settings --markdown``
prints the result, and ``tests/test_docs.py`` checks that the committed ``docs/configuration.md`` is current.
The output depends on the classes only, never on the environment or the machine.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from .config import Settings, TenantSettings

REGENERATE = "scope3 settings --markdown > docs/configuration.md"


def env_name(cls: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable a settings field is read from."""
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper() if not cls.model_config.get("case_sensitive") else f"{prefix}{name}"


def _is_none(tp: Any) -> bool:
    return tp is type(None)


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [_type(a) for a in args if not _is_none(a)]
        return " or ".join(kinds)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        inner = args[0] if args else Any
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return "list of mappings (" + ", ".join(f"`{k}`" for k in inner.model_fields) + ")"
        return f"list of {_type(inner)}"
    return {str: "text", int: "integer", float: "number", bool: "`true` or `false`", Path: "path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(field: FieldInfo) -> str:
    parts = []
    for m in field.metadata:
        for attr, words in (("ge", "at least"), ("gt", "above"), ("le", "at most"), ("lt", "below")):
            value = getattr(m, attr, None)
            if value is not None:
                parts.append(f"{words} {value}")
        pattern = getattr(m, "pattern", None)
        if pattern is not None:
            parts.append(f"matching `{pattern}`")
    return ", ".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, Path):  # a default under the home directory is shown as ~/..., the same on every machine
        text = f"~/{value.relative_to(Path.home())}" if value.is_relative_to(Path.home()) else str(value)
        return f"`{text}`"
    if isinstance(value, list) and not value:
        return "`[]`"
    return f"`{value}`"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return _value(field.default_factory())  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "unset"
    return _value(field.default)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: ``|`` escaped, and ``<`` outside code spans written as an entity
    (``<group>`` would otherwise be read as an HTML tag and vanish)."""
    pieces = text.replace("\n", " ").split("`")
    for i in range(0, len(pieces), 2):
        pieces[i] = pieces[i].replace("<", "&lt;")
    return "`".join(pieces).replace("|", "\\|")


def _kind(field: FieldInfo) -> str:
    kind = _type(field.annotation)
    extra = _constraints(field)
    return f"{kind}, {extra}" if extra else kind


def _settings_table(cls: type[BaseSettings]) -> list[str]:
    rows = ["| variable | default | type | what it does |", "| --- | --- | --- | --- |"]
    for name, field in cls.model_fields.items():
        rows.append(f"| `{env_name(cls, name, field)}` | {_default(field)} | {_cell(_kind(field))} "
                    f"| {_cell(field.description or '')} |")
    return rows


def _model_table(cls: type[BaseModel]) -> list[str]:
    rows = ["| key | default | type | what it does |", "| --- | --- | --- | --- |"]
    for name, field in cls.model_fields.items():
        rows.append(f"| `{name}` | {_default(field)} | {_cell(_kind(field))} | {_cell(field.description or '')} |")
        inner = typing.get_args(field.annotation)
        if typing.get_origin(field.annotation) is list and inner and isinstance(inner[0], type) \
                and issubclass(inner[0], BaseModel):
            for sub, subfield in inner[0].model_fields.items():
                rows.append(f"| `{name}[].{sub}` | {_default(subfield)} | {_cell(_kind(subfield))} "
                            f"| {_cell(subfield.description or '')} |")
    return rows


def markdown() -> str:
    """``docs/configuration.md``: every environment variable and ``hub.yaml`` key, its default and help text."""
    from .hub.settings import HUB_FILE, HubFile  # the hub package is only needed here

    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the settings classes; do not edit. Change the help text in the classes and run",
        f"     `{REGENERATE}`; tests/test_docs.py checks this file is current. -->",
        "",
        "Every setting is declared once, with its default and help text, in a class of the library; this page",
        "is generated from those classes. `scope3 settings` prints the platform settings with their current",
        "values (secrets hidden), and `scope3 hub settings SLUG` a tenant hub's settings after layering.",
        "",
        "## Platform settings: `scope3lib.config.Settings`",
        "",
        "Read from the environment when a program starts (`Settings()`), never at import time. Names are",
        "matched without regard to case. The Makefile sets `SCOPE3_DATA_DIR` to `./.scope3` (git-ignored).",
        "",
        *_settings_table(Settings),
        "",
        "## Tenant context: `scope3lib.config.TenantSettings`",
        "",
        "Set by the platform for the processes it starts on a tenant's behalf (the tenant hub's servers and",
        "services, `scope3 hub start`, report kernels), not by an operator. Names are matched exactly.",
        "",
        *_settings_table(TenantSettings),
        "",
        f"## Tenant hub file: `DATA_DIR/tenants/<slug>/{HUB_FILE}`, `scope3lib.hub.settings.HubFile`",
        "",
        "A tenant's JupyterHub reads its settings in layers: the defaults below, then the tenant's `hub.yaml`",
        "(written by `scope3 tenant create`, or by the hub's first start; an operator may",
        "edit the other keys), then the secrets kept apart in `hub_secrets.json` and `secrets.json` (mode 0600).",
        "The schema is strict: an unknown or mistyped key, or a value of the wrong type, stops the hub with a",
        "message naming the file and the key. Keys marked required are written by `scope3 tenant create`.",
        "",
        *_model_table(HubFile),
        "",
    ]
    return "\n".join(lines)
