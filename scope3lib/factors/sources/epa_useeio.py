"""US EPA *Supply Chain GHG Emission Factors for US Industries and Commodities* (USEEIO), NAICS-6, CO2e.

The spend-based factors of the platform: kg CO2e per US dollar (purchaser price, the year the file
names), one per 6-digit NAICS 2017 code. The reader takes the CSV exactly as EPA publishes it
(``SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv``) and refuses anything else with the
line and column at fault.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import FactorFileError
from ..dataset import FactorDataset, existing_file, factors_frame, file_sha256, first_true
from . import BuiltinRelease, FactorSource, register

_CODE = "2017 NAICS Code"
_TITLE = "2017 NAICS Title"
_GHG = "GHG"
_UNIT = "Unit"
_WITHOUT = "Supply Chain Emission Factors without Margins"
_MARGINS = "Margins of Supply Chain Emission Factors"
_WITH = "Supply Chain Emission Factors with Margins"
_USEEIO = "Reference USEEIO Code"
_COLUMNS = (_CODE, _TITLE, _GHG, _UNIT, _WITHOUT, _MARGINS, _WITH, _USEEIO)
_UNIT_RE = re.compile(r"kg CO2e/(\d{4}) USD, purchaser price")
_VERSION_RE = re.compile(r"_v(\d+(?:\.\d+)+)_", re.IGNORECASE)
_DOI = {"1.3.0": "10.23719/1531143"}
# Three published values rounded to 3 decimals: with = without + margins up to rounding.
_SUM_TOLERANCE = 0.002

NAME = "Supply Chain Greenhouse Gas Emission Factors for US Industries and Commodities"
PUBLISHER = "US Environmental Protection Agency"
LICENCE = "US Government work (public domain)"


class _Cells:
    """The file's cells as stripped text, and errors that name the file, line and column."""

    def __init__(self, path: Path, raw: pd.DataFrame) -> None:
        self.path = path
        self.frame = raw[list(_COLUMNS)].apply(lambda s: s.str.strip()).reset_index(drop=True)

    def __getitem__(self, column: str) -> pd.Series:
        return self.frame[column]

    def text(self, i: int, column: str) -> str:
        return str(self.frame[column].iloc[i])

    def fail(self, i: int, column: str, problem: str) -> FactorFileError:
        # Row position i of the frame is CSV line i + 2 (line 1 is the header).
        return FactorFileError(f"{self.path}, line {i + 2}, column {column!r}: {problem}")


def _version_from_name(p: Path) -> str:
    match = _VERSION_RE.search(p.name)
    if match is None:
        raise FactorFileError(
            f"{p.name}: cannot tell the dataset version from the file name; EPA names it like "
            "'SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv' "
            "(keep that name, or pass version='1.3.0')"
        )
    return match.group(1)


def _read_csv(p: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as exc:
        raise FactorFileError(f"{p}: the file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FactorFileError(f"{p}: not a readable CSV file ({exc})") from exc
    header = [str(c).strip() for c in raw.columns]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise FactorFileError(
            f"{p}, line 1 (header): missing column(s) {', '.join(repr(c) for c in missing)}; found "
            f"{', '.join(repr(c) for c in header)}. Expected the EPA Supply Chain GHG Emission Factors "
            "file for NAICS-6 commodities (all GHGs, CO2e)"
        )
    raw.columns = pd.Index(header)
    if raw.empty:
        raise FactorFileError(f"{p}: the header is there but the file has no factor rows")
    return raw


def _check_codes(cells: _Cells) -> None:
    bad = first_true(~cells[_CODE].str.fullmatch(r"\d{6}"))
    if bad is not None:
        raise cells.fail(bad, _CODE, f"{cells.text(bad, _CODE)!r} is not a 6-digit NAICS code")
    duplicated = cells[_CODE].duplicated(keep=False).to_numpy()
    if duplicated.any():
        code = cells[_CODE].to_numpy()[duplicated][0]
        lines = ", ".join(str(i + 2) for i in np.flatnonzero(cells[_CODE].to_numpy() == code))
        raise FactorFileError(f"{cells.path}, column {_CODE!r}: NAICS code {code} appears on lines {lines}")
    bad = first_true(cells[_TITLE] == "")
    if bad is not None:
        raise cells.fail(bad, _TITLE, "empty title")
    bad = first_true(cells[_GHG] != "All GHGs")
    if bad is not None:
        raise cells.fail(bad, _GHG, f"{cells.text(bad, _GHG)!r} where 'All GHGs' was expected (this reader takes "
                                    "the CO2e file, not the per-gas one)")


def _dollar_year(cells: _Cells) -> int:
    units = cells[_UNIT].str.extract(_UNIT_RE, expand=False)
    bad = first_true(units.isna())
    if bad is not None:
        raise cells.fail(bad, _UNIT, f"{cells.text(bad, _UNIT)!r} is not 'kg CO2e/<year> USD, purchaser price'")
    year = int(units.iloc[0])
    bad = first_true(units != units.iloc[0])
    if bad is not None:
        raise cells.fail(bad, _UNIT, f"dollar year {units.iloc[bad]} differs from {year} on line 2")
    return year


def _with_margins(cells: _Cells) -> np.ndarray:
    """The factor column, after checking that with = without + margins on every line."""
    numbers: dict[str, np.ndarray] = {}
    for column in (_WITHOUT, _MARGINS, _WITH):
        values = pd.to_numeric(cells[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = first_true(~np.isfinite(values))
        if bad is not None:
            found = cells.text(bad, column)
            raise cells.fail(bad, column, "empty cell" if found == "" else f"{found!r} is not a number")
        numbers[column] = values
    with_margins = numbers[_WITH]
    bad = first_true(np.abs(numbers[_WITHOUT] + numbers[_MARGINS] - with_margins) > _SUM_TOLERANCE)
    if bad is not None:
        raise cells.fail(bad, _WITH, f"{with_margins[bad]} is not the sum of {_WITHOUT!r} "
                                     f"({numbers[_WITHOUT][bad]}) and {_MARGINS!r} ({numbers[_MARGINS][bad]})")
    return with_margins


def read_epa_useeio(path: str | Path, *, version: str | None = None) -> FactorDataset:
    """Read the US EPA *Supply Chain GHG Emission Factors* CSV (NAICS-6, all GHGs, CO2e).

    Returns one factor per 6-digit NAICS (2017) code, ``factor_key`` being that code. The value is the
    "Supply Chain Emission Factors with Margins" column, in kg CO2e per US dollar of the year the file
    names (unit ``USD_2022`` for v1.3.0: 2022 USD, purchaser price), region ``US``, GWPs of IPCC AR5.
    The CO2/CH4/N2O split is not in this file (NaN).

    The dataset version is taken from the file name as EPA publishes it
    (``SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv``); pass ``version`` for a renamed
    copy. Raises :class:`~scope3lib.errors.FactorFileError` when the file is not this format.
    """
    p = existing_file(path)
    version = version or _version_from_name(p)
    cells = _Cells(p, _read_csv(p))
    _check_codes(cells)
    year = _dollar_year(cells)
    factors = factors_frame(pd.DataFrame({
        "factor_key": cells[_CODE], "description": cells[_TITLE], "unit": f"USD_{year}", "region": "US",
        "year": year, "kg_co2e_per_unit": _with_margins(cells), "kg_co2_per_unit": math.nan,
        "kg_ch4_per_unit": math.nan, "kg_n2o_per_unit": math.nan, "gwp": "AR5", "scope": pd.NA,
        "category_hint": pd.NA,
    }))
    doi = _DOI.get(version)
    citation = (f"US EPA, {NAME} v{version}{f', DOI {doi}' if doi else ''}; column '{_WITH}', "
                f"kg CO2e per {year} USD (purchaser price)")
    return FactorDataset(source=SOURCE.name, name=NAME, version=version, publisher=PUBLISHER, licence=LICENCE,
                         citation=citation, sha256=file_sha256(p), factors=factors)


SOURCE = register(FactorSource(
    name="epa-useeio",
    title="US EPA Supply Chain GHG Emission Factors (USEEIO), kg CO2e per USD by NAICS-6",
    read=read_epa_useeio,
    sector_factors=True,
    builtin={"1.3.0": BuiltinRelease(
        name=NAME, publisher=PUBLISHER, licence=LICENCE,
        citation=("US EPA (2024), Supply Chain Greenhouse Gas Emission Factors for US Industries and Commodities "
                  "v1.3.0, DOI 10.23719/1531143; column 'Supply Chain Emission Factors with Margins', kg CO2e per "
                  "2022 USD (purchaser price); built-in subset of the NAICS codes the demo uses"),
    )},
))
