"""UK DESNZ *Greenhouse gas reporting: conversion factors*, full set for advanced users (the DEFRA factors).

Activity-based factors for fuels, UK electricity, transmission and distribution, water, waste, business
travel by air and land, freight and hotel stays. The reader takes the workbook as DESNZ publishes it
(``ghg-conversion-factors-2024-full_set__for_advanced_users__v1_1.xlsx``), finds each sheet's tables by
their header row wherever they are, and refuses anything else with the sheet, row and column at fault.
"""

from __future__ import annotations

import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import FactorFileError
from ..dataset import GWP_CH4_N2O, FactorDataset, column_letter, existing_file, factors_frame, file_sha256
from . import BuiltinRelease, FactorSource, register

PUBLISHER = "UK Department for Energy Security and Net Zero (DESNZ)"
LICENCE = "Open Government Licence v3.0"

_DESNZ_TITLE = "UK Government GHG Conversion Factors for Company Reporting"

# Value columns of a DESNZ table; "kg CO2e" starts a group (e.g. "With RF", "Diesel", "Landfill").
_VALUE_HEADERS = {
    "kg co2e": "co2e",
    "kg co2e of co2 per unit": "co2",
    "kg co2e of ch4 per unit": "ch4",
    "kg co2e of n2o per unit": "n2o",
}

# DESNZ's unit label -> (the unit of the factor, the unit's part of a factor key).
_DESNZ_UNITS: dict[str, tuple[str, str]] = {
    "kwh": ("kWh", "kwh"),
    "kwh (net cv)": ("kWh", "kwh-net-cv"),
    "kwh (gross cv)": ("kWh", "kwh-gross-cv"),
    "tonnes": ("tonne", "tonne"),
    "litres": ("litre", "litre"),
    "cubic metres": ("m3", "m3"),
    "million litres": ("megalitre", "megalitre"),
    "tonne.km": ("tonne.km", "tonne-km"),
    "passenger.km": ("passenger.km", "passenger-km"),
    "km": ("km", "km"),
    "miles": ("mile", "mile"),
    "room per night": ("room.night", "room-night"),
}

# Hotel-stay countries as DESNZ names them -> ISO 3166-1 alpha-2.
_COUNTRY_ISO: dict[str, str] = {
    "UK": "GB",
    "UK (London)": "GB",
    "Argentina": "AR",
    "Australia": "AU",
    "Austria": "AT",
    "Belgium": "BE",
    "Brazil": "BR",
    "Canada": "CA",
    "Chile": "CL",
    "China": "CN",
    "Colombia": "CO",
    "Costa Rica": "CR",
    "Czech Republic": "CZ",
    "Egypt": "EG",
    "Fiji": "FJ",
    "Finland": "FI",
    "France": "FR",
    "Germany": "DE",
    "Greece": "GR",
    "Hong Kong, China": "HK",
    "India": "IN",
    "Indonesia": "ID",
    "Ireland": "IE",
    "Israel": "IL",
    "Italy": "IT",
    "Japan": "JP",
    "Jordan": "JO",
    "Kazakhstan": "KZ",
    "Korea": "KR",
    "Macau, China": "MO",
    "Malaysia": "MY",
    "Maldives": "MV",
    "Mexico": "MX",
    "Netherlands": "NL",
    "New Zealand": "NZ",
    "Oman": "OM",
    "Panama": "PA",
    "Peru": "PE",
    "Philippines": "PH",
    "Poland": "PL",
    "Portugal": "PT",
    "Qatar": "QA",
    "Romania": "RO",
    "Russian Federation": "RU",
    "Saudi Arabia": "SA",
    "Singapore": "SG",
    "South Africa": "ZA",
    "Spain": "ES",
    "Switzerland": "CH",
    "Taiwan, China": "TW",
    "Thailand": "TH",
    "Turkey": "TR",
    "United Arab Emirates": "AE",
    "United States": "US",
    "Vietnam": "VN",
}

_HAULS = {
    "Domestic, to/from UK": "domestic",
    "Short-haul, to/from UK": "shorthaul",
    "Long-haul, to/from UK": "longhaul",
    "International, to/from non-UK": "international",
}
_CABIN_CLASSES = {
    "Average passenger": "average",
    "Economy class": "economy",
    "Premium economy class": "premium-economy",
    "Business class": "business",
    "First class": "first",
}
_MAX_GROUP_LABEL = 60
_VEHICLE_FUELS = {"Plug-in Hybrid Electric Vehicle": "phev", "Battery Electric Vehicle": "bev"}


def _slug(text: str) -> str:
    s = text.strip().lower()
    s = s.replace("&", " and ").replace(">", " over ").replace("+", " plus ").replace("%", " pct ")
    s = re.sub(r"(?<=\d),(?=\d)", "", s)  # 120,000 -> 120000
    s = re.sub(r"[^a-z0-9]+", "-", s)
    return s.strip("-")


def _join(*parts: str) -> str:
    return "-".join(p for p in parts if p)


@dataclass(frozen=True)
class _Row:
    """One factor row of a DESNZ table, before it gets its key."""

    labels: dict[str, str]  # header (lower case) -> label, carried down over blank cells
    group: str  # label above the value group ("With RF", "Diesel", "Landfill"), or ""
    unit_label: str  # as DESNZ writes it ("kWh (Net CV)")
    unit_key: str  # its part of a factor key ("kwh-net-cv")
    values: dict[str, float]  # co2e, co2, ch4, n2o (kg CO2e of each gas)
    where: str  # "sheet 'X', row N"


_KeyFn = Callable[[_Row], str]


def _key_uk_electricity(r: _Row) -> str:
    activity = r.labels.get("activity", "")
    return (
        "uk-electricity-generation"
        if activity == "Electricity generated"
        else _join("uk-electricity", _slug(activity))
    )


def _key_td(r: _Row) -> str:
    activity = r.labels.get("activity", "")
    if activity == "T&D- UK electricity":
        return "uk-electricity-td"
    return _join("td", _slug(activity), _slug(r.labels.get("type", "")))


def _key_fuels(r: _Row) -> str:
    return _join("fuel", _slug(r.labels.get("fuel", "")), r.unit_key)


def _key_freight(r: _Row) -> str:
    activity = r.labels.get("activity", "")
    kind = r.labels.get("type", "")
    if activity == "Vans":
        fuel = _VEHICLE_FUELS.get(r.group, _slug(r.group))
        return _join("freight-van", fuel, _slug(kind), r.unit_key)
    if activity.startswith("HGV"):
        vehicle = "freight-hgv-refrigerated" if "refrigerated" in activity.lower() else "freight-hgv"
        laden = _slug(r.group.lower().replace("laden", "").replace("%", ""))
        return _join(vehicle, _slug(kind), f"laden-{laden}" if laden else "", r.unit_key)
    if activity == "Freight flights":
        return _join("freight-air", _HAULS.get(kind, _slug(kind)), _slug(r.group))
    if activity == "Rail":
        return "freight-rail" if kind == "Freight train" else _join("freight-rail", _slug(kind))
    if activity in ("Sea tanker", "Cargo ship"):
        return _join("freight-sea", _slug(kind), _slug(r.labels.get("size", "")))
    others = [_slug(v) for k, v in r.labels.items() if k != "activity"]
    return _join("freight", _slug(activity), *others, _slug(r.group), r.unit_key)


def _key_air(r: _Row) -> str:
    haul = r.labels.get("haul", "")
    cabin = r.labels.get("class", "")
    return _join(
        "air", _HAULS.get(haul, _slug(haul)), _CABIN_CLASSES.get(cabin, _slug(cabin)), _slug(r.group)
    )


def _key_land(r: _Row) -> str:
    activity = r.labels.get("activity", "")
    kind = r.labels.get("type", "")
    if activity.startswith("Cars"):
        size = _slug(re.sub(r"\s+car$", "", kind, flags=re.IGNORECASE))
        return _join("car", size, _VEHICLE_FUELS.get(r.group, _slug(r.group)), r.unit_key)
    if activity == "Taxis":
        return _join("taxi", _slug(re.sub(r"\s+taxi$", "", kind, flags=re.IGNORECASE)), r.unit_key)
    return _join(_slug(activity), _slug(kind), _slug(r.group), r.unit_key)


def _key_hotel(r: _Row) -> str:
    country = r.labels.get("country", "")
    name = {"UK": "United Kingdom", "UK (London)": "United Kingdom London"}.get(country, country)
    return _join("hotel-stay", _slug(name))


def _key_waste(r: _Row) -> str:
    return _join("waste", _slug(r.labels.get("waste type", "")), _slug(r.group))


def _key_water(prefix: str) -> _KeyFn:
    return lambda r: _join(prefix, r.unit_key)


@dataclass(frozen=True)
class _Sheet:
    name: str
    key: _KeyFn
    category_hint: int | None


# The sheets read, in workbook order. Category hints are the usual GHG Protocol Scope 3 categories.
_DESNZ_SHEETS: tuple[_Sheet, ...] = (
    _Sheet("Fuels", _key_fuels, None),
    _Sheet("UK electricity", _key_uk_electricity, None),
    _Sheet("Transmission and distribution", _key_td, 3),
    _Sheet("Water supply", _key_water("water-supply"), 1),
    _Sheet("Water treatment", _key_water("water-treatment"), 5),
    _Sheet("Waste disposal", _key_waste, 5),
    _Sheet("Business travel- air", _key_air, 6),
    _Sheet("Business travel- land", _key_land, 6),
    _Sheet("Freighting goods", _key_freight, 4),
    _Sheet("Hotel stay", _key_hotel, 6),
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    return str(value)


@dataclass
class _Block:
    """The layout of one table, read from its header row and the row above it."""

    label_cols: list[tuple[int, str]]  # (column, header lower case) left of the unit column
    unit_col: int
    # (column, kind, group, header as written); a group is the "kg CO2e" column that starts it and
    # the label above that column ("With RF", "Diesel", "Landfill", or "").
    value_cols: list[tuple[int, str, tuple[int, str], str]]


def _parse_header(cells: Sequence[str], above: Sequence[str]) -> _Block | None:
    lowered = [c.lower() for c in cells]
    if not lowered or lowered[0] != "activity" or "unit" not in lowered:
        return None
    unit_col = lowered.index("unit")
    label_cols = [(i, lowered[i]) for i in range(unit_col) if lowered[i]]
    value_cols: list[tuple[int, str, tuple[int, str], str]] = []
    group: tuple[int, str] | None = None
    for i in range(unit_col + 1, len(lowered)):
        kind = _VALUE_HEADERS.get(lowered[i])
        if kind is None:
            continue
        if kind == "co2e":
            # The group label sits above its "kg CO2e" column; a long text there is a note, not a label.
            label = _cell(above, i)
            group = (i, label if len(label) <= _MAX_GROUP_LABEL else "")
        if group is None:
            continue  # a gas column before any "kg CO2e" column belongs to no factor
        value_cols.append((i, kind, group, cells[i]))
    if not value_cols:
        return None
    return _Block(label_cols, unit_col, value_cols)


def _number(value: Any, where: str, column: int, header: str) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise FactorFileError(
                f"{where}, column {column_letter(column)} ({header!r}): {value} is not finite"
            )
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    raise FactorFileError(f"{where}, column {column_letter(column)} ({header!r}): {text!r} is not a number")


def _sheet_rows(ws: Any) -> Iterator[tuple[int, list[Any]]]:
    for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
        yield number, list(row)


def _load_sheet(path: Path, wb: Any, name: str) -> list[tuple[int, list[Any]]]:
    """All rows of a sheet; read-only workbooks parse a sheet's XML only now, so damage shows here."""
    try:
        return list(_sheet_rows(wb[name]))
    except (SyntaxError, zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError) as exc:
        # SyntaxError covers the XML parse errors of both ElementTree and lxml.
        raise FactorFileError(
            f"{path}, sheet {name!r}: the sheet cannot be read; the file looks damaged or truncated "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _sheet_meta(rows: list[tuple[int, list[Any]]], label: str) -> Any:
    """The value next to a label such as 'Scope:' in a sheet's title rows."""
    for _, row in rows[:12]:
        for i, cell in enumerate(row[:-1]):
            if _text(cell) == label:
                return row[i + 1]
    return None


def _read_table_rows(path: Path, sheet: str, rows: list[tuple[int, list[Any]]]) -> list[_Row]:
    found: list[_Row] = []
    block: _Block | None = None
    labels: dict[str, str] = {}
    above: list[str] = []
    for number, row in rows:
        cells = [_text(c) for c in row]
        header = _parse_header(cells, above)
        above = cells
        if header is not None:
            block, labels = header, {}
            continue
        if block is None:
            continue
        unit_label = _cell(cells, block.unit_col)
        if not unit_label:
            continue  # blank line, note or FAQ text between tables
        where = f"{path}, sheet {sheet!r}, row {number}"
        unit = _DESNZ_UNITS.get(unit_label.lower())
        if unit is None:
            raise FactorFileError(
                f"{where}, column {column_letter(block.unit_col)} ('Unit'): unknown unit {unit_label!r}"
            )
        # Labels are written once and left blank (merged) below: carry them down, and a new label
        # at one level clears the levels to its right.
        for depth, (col, name) in enumerate(block.label_cols):
            if _cell(cells, col):
                labels[name] = _cell(cells, col)
                for deeper_col, deeper in block.label_cols[depth + 1 :]:
                    if not _cell(cells, deeper_col):
                        labels.pop(deeper, None)
        groups: dict[tuple[int, str], dict[str, float]] = {}
        for col, kind, group, header_text in block.value_cols:
            value = _number(row[col] if col < len(row) else None, where, col, header_text)
            if value is not None:
                groups.setdefault(group, {})[kind] = value
        for (total_col, label), values in groups.items():
            if "co2e" not in values:
                raise FactorFileError(
                    f"{where}, column {column_letter(total_col)} ('kg CO2e'): empty, but the gas split "
                    "beside it is given"
                )
            found.append(_Row(dict(labels), label, unit_label, unit[1], values, where))
    return found


def _cell(cells: Sequence[str], col: int) -> str:
    return cells[col] if col < len(cells) else ""


def _open_workbook(path: Path) -> Any:
    import openpyxl  # a dependency of the package; imported here to keep `import scope3lib` light

    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel features it ignores (data validation, conditional formats).
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise FactorFileError(
            f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc}); expected the DESNZ "
            "'conversion factors ... full set (for advanced users)' workbook as downloaded"
        ) from exc
    except Exception as exc:  # openpyxl raises its own InvalidFileException and others
        raise FactorFileError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc


def _desnz_intro(path: Path, wb: Any) -> tuple[int, str, str]:
    """Year, version and GWP basis, as the Introduction sheet states them."""
    if "Introduction" not in wb.sheetnames:
        raise FactorFileError(
            f"{path}: no 'Introduction' sheet; is this the DESNZ conversion factors workbook?"
        )
    rows = _load_sheet(path, wb, "Introduction")
    texts = [_text(c) for _, row in rows for c in row if c is not None]
    if _DESNZ_TITLE not in texts:
        raise FactorFileError(f"{path}, sheet 'Introduction': title {_DESNZ_TITLE!r} not found")
    year = _sheet_meta(rows, "Year:")
    version = _sheet_meta(rows, "Version:")
    if not isinstance(year, int | float) or isinstance(year, bool) or not 2000 <= int(year) <= 2100:
        raise FactorFileError(
            f"{path}, sheet 'Introduction': no 'Year:' with a year next to it (got {year!r})"
        )
    if version is None or not _text(version):
        raise FactorFileError(f"{path}, sheet 'Introduction': no 'Version:' with a version next to it")
    gwp = None
    for text in texts:
        if "GWP" in text or "Global Warming Potential" in text or "global warming potential" in text:
            match = re.search(r"Assessment Report \((AR\d)\)", text)
            if match:
                gwp = match.group(1)
                break
    if gwp is None:
        raise FactorFileError(
            f"{path}, sheet 'Introduction': the GWP basis (e.g. 'Fifth Assessment Report (AR5)') "
            "is not stated"
        )
    if gwp not in GWP_CH4_N2O:
        raise FactorFileError(f"{path}, sheet 'Introduction': GWP basis {gwp} is not supported (AR4, AR5)")
    return int(year), _text(version), gwp


def _region(spec: _Sheet, r: _Row) -> str:
    if spec.name != "Hotel stay":
        return "GB"
    country = r.labels.get("country", "")
    region = _COUNTRY_ISO.get(country)
    if region is None:
        raise FactorFileError(f"{r.where}: hotel-stay country {country!r} has no known ISO code")
    return region


def _sheet_records(p: Path, wb: Any, spec: _Sheet, year: int, gwp: str, seen: dict[str, str]) -> list[dict[str, Any]]:
    """One record per factor of a sheet; ``seen`` (key -> where) catches a key produced twice."""
    gwp_ch4, gwp_n2o = GWP_CH4_N2O[gwp]
    rows = _load_sheet(p, wb, spec.name)
    scope_match = re.fullmatch(r"Scope ([123])", _text(_sheet_meta(rows, "Scope:")))
    table = _read_table_rows(p, spec.name, rows)
    if not table:
        raise FactorFileError(
            f"{p}, sheet {spec.name!r}: no factor table found (a header row 'Activity ... Unit ... "
            "kg CO2e' followed by rows with a unit and values)"
        )
    records: list[dict[str, Any]] = []
    for r in table:
        key = spec.key(r)
        if key in seen:
            raise FactorFileError(
                f"{r.where}: factor key {key!r} is also produced by {seen[key]}; the sheet's layout "
                "is not the one this reader knows"
            )
        seen[key] = r.where
        group_text = f", {r.group}" if r.group else ""
        values = r.values
        records.append({
            "factor_key": key,
            "description": f"{spec.name}: {', '.join(r.labels.values())}{group_text}; per {r.unit_label}",
            "unit": _DESNZ_UNITS[r.unit_label.lower()][0],
            "region": _region(spec, r),
            "year": year,
            "kg_co2e_per_unit": values["co2e"],
            "kg_co2_per_unit": values.get("co2", math.nan),
            "kg_ch4_per_unit": values["ch4"] / gwp_ch4 if "ch4" in values else math.nan,
            "kg_n2o_per_unit": values["n2o"] / gwp_n2o if "n2o" in values else math.nan,
            "gwp": gwp,
            "scope": int(scope_match.group(1)) if scope_match else pd.NA,
            "category_hint": spec.category_hint if spec.category_hint is not None else pd.NA,
        })
    return records


def read_desnz(path: str | Path) -> FactorDataset:
    """Read the UK DESNZ *conversion factors, full set (for advanced users)* workbook.

    Covers the sheets Fuels, UK electricity, Transmission and distribution, Water supply, Water
    treatment, Waste disposal, Business travel- air (with and without radiative forcing as separate
    keys), Business travel- land, Freighting goods and Hotel stay. Each sheet's tables are found by
    their header row (``Activity ... Unit ... kg CO2e``), whatever their position.

    ``kg_co2e_per_unit`` is DESNZ's "kg CO2e" (kg CO2e per unit: kWh, litre, tonne, tonne.km,
    passenger.km, km, mile, room.night, m3). Where DESNZ gives the split "kg CO2e of CO2/CH4/N2O per
    unit", ``kg_co2_per_unit`` is the CO2 part and ``kg_ch4_per_unit``/``kg_n2o_per_unit`` are kg of
    CH4 and N2O (the published CO2e divided by the GWP the workbook states: AR5, CH4 28, N2O 265). For
    air travel with radiative forcing the whole uplift sits in the CO2 part, as DESNZ publishes it.
    Rows without a value (e.g. countries with no hotel factor this year) are left out.

    Region is ``GB``, except hotel stays (the country's ISO code). Year and version come from the
    Introduction sheet (version ``2024-v1.1`` for the 2024 workbook, version 1.1).
    """
    p = existing_file(path)
    wb = _open_workbook(p)
    try:
        year, version_text, gwp = _desnz_intro(p, wb)
        missing = [s.name for s in _DESNZ_SHEETS if s.name not in wb.sheetnames]
        if missing:
            raise FactorFileError(
                f"{p}: sheet(s) {', '.join(repr(m) for m in missing)} not found; expected the DESNZ "
                "'full set (for advanced users)' workbook, which has them all"
            )
        seen: dict[str, str] = {}
        records = [rec for spec in _DESNZ_SHEETS for rec in _sheet_records(p, wb, spec, year, gwp, seen)]
    finally:
        wb.close()
    return FactorDataset(
        source=SOURCE.name,
        name=f"Greenhouse gas reporting: conversion factors {year} (full set for advanced users)",
        version=f"{year}-v{version_text}",
        publisher=PUBLISHER,
        licence=LICENCE,
        citation=(
            f"DESNZ ({year}), UK Government GHG Conversion Factors for Company Reporting, full set for "
            f"advanced users, version {version_text}; 'kg CO2e' columns, GWP {gwp}"
        ),
        sha256=file_sha256(p),
        factors=factors_frame(records),
    )


SOURCE = register(FactorSource(
    name="desnz",
    title="UK DESNZ GHG conversion factors, full set for advanced users (fuels, UK electricity, travel, freight...)",
    aliases=("defra",),
    read=read_desnz,
    grid_rank=1,
    builtin={"2024-v1.1": BuiltinRelease(
        name="Greenhouse gas reporting: conversion factors 2024 (full set for advanced users)",
        publisher=PUBLISHER, licence=LICENCE,
        citation=("DESNZ (2024), UK Government GHG Conversion Factors for Company Reporting, full set for advanced "
                  "users, version 1.1; built-in subset (UK grid electricity)"),
    )},
))
