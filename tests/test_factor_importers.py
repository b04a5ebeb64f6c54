"""The official factor files are read as published, and anything else is refused with a clear reason.

The files are the publishers' own, kept beside the repository in ``../shared/data/factors/``; the
expected values were checked by hand against the files (EPA CSV, DESNZ 2024 workbook v1.1).
"""

from __future__ import annotations

import math
import re
import shutil
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from scope3lib.errors import FactorFileError
from scope3lib.factors import FACTOR_COLUMNS, FactorDataset, builtin_factors
from scope3lib.factors.sources.desnz import read_desnz
from scope3lib.factors.sources.epa_useeio import read_epa_useeio

FACTORS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "factors"
EPA_FILE = FACTORS_DIR / "SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv"
DESNZ_FILE = FACTORS_DIR / "ghg-conversion-factors-2024-full_set__for_advanced_users__v1_1.xlsx"

# The official files are part of the test environment (shared/ beside the repository, also in CI):
# a missing file is a failure that says where they were looked for, never a silent skip.
official_files = pytest.mark.usefixtures("official_factor_files")


@pytest.fixture(scope="module")
def official_factor_files() -> None:
    for f in (EPA_FILE, DESNZ_FILE):
        assert f.is_file(), f"official factor file missing: {f} (shared/data/factors beside the repository)"

EGRID_SUBREGIONS = {
    "AKGD", "AKMS", "AZNM", "CAMX", "ERCT", "FRCC", "HIMS", "HIOA", "MROE", "MROW", "NEWE", "NWPP", "NYCW",
    "NYLI", "NYUP", "PRMS", "RFCE", "RFCM", "RFCW", "RMPA", "SPNO", "SPSO", "SRMV", "SRMW", "SRSO", "SRTV",
    "SRVC",
}  # fmt: skip
LB_PER_MWH = 0.45359237 / 1000  # kg/kWh per lb/MWh


@pytest.fixture(scope="module")
def epa() -> FactorDataset:
    return read_epa_useeio(EPA_FILE)


@pytest.fixture(scope="module")
def desnz() -> FactorDataset:
    return read_desnz(DESNZ_FILE)


def factor(dataset: FactorDataset, key: str) -> pd.Series:
    rows = dataset.factors[dataset.factors["factor_key"] == key]
    assert len(rows) == 1, f"{key!r} found {len(rows)} times"
    return rows.iloc[0]


# ---------------------------------------------------------------------------------------------------
# EPA Supply Chain GHG Emission Factors v1.3.0
# ---------------------------------------------------------------------------------------------------


@official_files
def test_epa_reads_every_naics_commodity_with_its_metadata(epa: FactorDataset) -> None:
    assert len(epa) == 1016
    assert list(epa.factors.columns) == list(FACTOR_COLUMNS)
    assert epa.factors["factor_key"].is_unique
    assert epa.factors["factor_key"].str.fullmatch(r"\d{6}").all()
    assert (epa.source, epa.version) == ("epa-useeio", "1.3.0")
    assert epa.sha256.startswith("c7f50864")
    assert "10.23719/1531143" in epa.citation
    assert set(epa.factors["unit"]) == {"USD_2022"}
    assert set(epa.factors["region"]) == {"US"}
    assert set(epa.factors["year"]) == {2022}
    assert set(epa.factors["gwp"]) == {"AR5"}
    assert epa.factors["kg_co2_per_unit"].isna().all()


@official_files
def test_epa_uses_the_with_margins_column(epa: FactorDataset) -> None:
    cement = factor(epa, "327310")
    assert cement["description"] == "Cement Manufacturing"
    assert cement["kg_co2e_per_unit"] == pytest.approx(3.924)  # without margins 3.846 + margins 0.078


@official_files
def test_epa_agrees_with_the_curated_rows_typed_in_from_it(epa: FactorDataset) -> None:
    curated = builtin_factors("epa-useeio").set_index("factor_key")["kg_co2e_per_unit"]
    read = epa.factors.set_index("factor_key")["kg_co2e_per_unit"]
    assert curated.to_dict() == pytest.approx(read[curated.index].to_dict())


@official_files
def test_epa_file_is_read_well_under_a_second() -> None:
    start = time.perf_counter()
    read_epa_useeio(EPA_FILE)
    assert time.perf_counter() - start < 1.0


@official_files
def test_epa_version_must_be_in_the_file_name_or_given(tmp_path: Path) -> None:
    renamed = tmp_path / "factors.csv"
    shutil.copy(EPA_FILE, renamed)
    with pytest.raises(FactorFileError, match=r"factors\.csv: cannot tell the dataset version.*version="):
        read_epa_useeio(renamed)
    assert read_epa_useeio(renamed, version="1.3.0").version == "1.3.0"


def _write_epa(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv"
    path.write_text(text, encoding="utf-8")
    return path


EPA_HEADER = (
    "2017 NAICS Code,2017 NAICS Title,GHG,Unit,Supply Chain Emission Factors without Margins,"
    "Margins of Supply Chain Emission Factors,Supply Chain Emission Factors with Margins,"
    "Reference USEEIO Code\n"
)
EPA_ROW = (
    '327310,Cement Manufacturing,All GHGs,"kg CO2e/2022 USD, purchaser price",3.846,0.078,{with_},327310\n'
)


def test_epa_refuses_a_csv_with_another_header(tmp_path: Path) -> None:
    path = _write_epa(tmp_path, "NAICS,Title,kg CO2e per USD\n327310,Cement Manufacturing,3.924\n")
    with pytest.raises(FactorFileError) as err:
        read_epa_useeio(path)
    message = str(err.value)
    assert str(path) in message
    assert "line 1 (header)" in message
    assert "'Supply Chain Emission Factors with Margins'" in message


def test_epa_refuses_a_non_numeric_factor_naming_line_and_column(tmp_path: Path) -> None:
    good = EPA_ROW.format(with_="3.924")
    bad = good.replace("327310,Cement", "327320,Ready-Mix Concrete").replace("3.924", "n/a")
    path = _write_epa(tmp_path, EPA_HEADER + good + bad)
    with pytest.raises(FactorFileError) as err:
        read_epa_useeio(path)
    assert re.search(
        r"line 3, column 'Supply Chain Emission Factors with Margins': 'n/a' is not a number", str(err.value)
    )


def test_epa_refuses_duplicate_codes_and_per_gas_files(tmp_path: Path) -> None:
    row = EPA_ROW.format(with_="3.924")
    with pytest.raises(FactorFileError, match=r"NAICS code 327310 appears on lines 2, 3"):
        read_epa_useeio(_write_epa(tmp_path, EPA_HEADER + row + row))
    with pytest.raises(FactorFileError, match=r"line 2, column 'GHG': 'Carbon dioxide'"):
        read_epa_useeio(_write_epa(tmp_path, EPA_HEADER + row.replace("All GHGs", "Carbon dioxide")))


def test_epa_refuses_a_with_margins_value_that_is_not_the_sum(tmp_path: Path) -> None:
    path = _write_epa(tmp_path, EPA_HEADER + EPA_ROW.format(with_="4.924"))
    with pytest.raises(FactorFileError, match=r"line 2, column 'Supply Chain Emission Factors with Margins'"):
        read_epa_useeio(path)


def test_epa_refuses_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FactorFileError, match="empty"):
        read_epa_useeio(_write_epa(tmp_path, ""))


def test_a_missing_file_is_named() -> None:
    with pytest.raises(FactorFileError, match="no such file"):
        read_epa_useeio(Path("/nonexistent/SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv"))
    with pytest.raises(FactorFileError, match="no such file"):
        read_desnz(Path("/nonexistent/conversion-factors.xlsx"))


# ---------------------------------------------------------------------------------------------------
# DESNZ conversion factors 2024, full set for advanced users, v1.1
# ---------------------------------------------------------------------------------------------------


@official_files
def test_desnz_metadata_comes_from_the_workbook(desnz: FactorDataset) -> None:
    assert (desnz.source, desnz.version) == ("desnz", "2024-v1.1")
    assert desnz.licence == "Open Government Licence v3.0"
    assert desnz.sha256.startswith("558116ed")
    assert list(desnz.factors.columns) == list(FACTOR_COLUMNS)
    assert desnz.factors["factor_key"].is_unique
    assert set(desnz.factors["year"]) == {2024}
    assert set(desnz.factors["gwp"]) == {"AR5"}  # Introduction sheet: IPCC AR5, 100-year
    assert desnz.factors["kg_co2e_per_unit"].gt(0).all()


@official_files
def test_desnz_covers_the_sheets_scope3_needs(desnz: FactorDataset) -> None:
    sheets = desnz.factors["description"].str.split(":").str[0].value_counts().to_dict()
    assert sheets == {
        "Fuels": 117,
        "UK electricity": 1,
        "Transmission and distribution": 2,
        "Water supply": 2,
        "Water treatment": 2,
        "Waste disposal": 134,
        "Business travel- air": 28,
        "Business travel- land": 168,
        "Freighting goods": 289,
        "Hotel stay": 39,
    }
    assert len(desnz) == 782
    assert desnz.factors["factor_key"].str.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*").all()


@official_files
def test_desnz_uk_electricity_and_td(desnz: FactorDataset) -> None:
    generation = factor(desnz, "uk-electricity-generation")
    assert generation["kg_co2e_per_unit"] == pytest.approx(0.20705)
    assert generation["kg_co2_per_unit"] == pytest.approx(0.20493)
    # DESNZ gives 0.0009 kg CO2e of CH4 and 0.00122 of N2O; stored as kg of gas with AR5 GWPs.
    assert generation["kg_ch4_per_unit"] == pytest.approx(0.0009 / 28)
    assert generation["kg_n2o_per_unit"] == pytest.approx(0.00122 / 265)
    assert (generation["unit"], generation["region"], generation["scope"]) == ("kWh", "GB", 2)
    td = factor(desnz, "uk-electricity-td")
    assert td["kg_co2e_per_unit"] == pytest.approx(0.0183)
    assert (td["scope"], td["category_hint"]) == (3, 3)


@official_files
def test_desnz_air_travel_with_and_without_radiative_forcing(desnz: FactorDataset) -> None:
    with_rf = factor(desnz, "air-shorthaul-economy-with-rf")
    without_rf = factor(desnz, "air-shorthaul-economy-without-rf")
    assert with_rf["kg_co2e_per_unit"] == pytest.approx(0.18287)
    assert without_rf["kg_co2e_per_unit"] == pytest.approx(0.10794)
    assert with_rf["unit"] == without_rf["unit"] == "passenger.km"
    assert factor(desnz, "air-longhaul-business-with-rf")["kg_co2e_per_unit"] == pytest.approx(0.58028)
    assert factor(desnz, "air-longhaul-business-without-rf")["kg_co2e_per_unit"] == pytest.approx(0.34252)
    assert factor(desnz, "air-domestic-average-with-rf")["kg_co2e_per_unit"] == pytest.approx(0.27257)
    air = desnz.factors[desnz.factors["factor_key"].str.startswith("air-")]
    assert len(air) == 28 and set(air["category_hint"]) == {6}


@official_files
def test_desnz_hotel_stays_by_country(desnz: FactorDataset) -> None:
    uk = factor(desnz, "hotel-stay-united-kingdom")
    assert (uk["kg_co2e_per_unit"], uk["unit"], uk["region"]) == (pytest.approx(10.4), "room.night", "GB")
    assert factor(desnz, "hotel-stay-united-kingdom-london")["kg_co2e_per_unit"] == pytest.approx(11.5)
    assert factor(desnz, "hotel-stay-germany")["region"] == "DE"
    assert factor(desnz, "hotel-stay-united-states")["kg_co2e_per_unit"] == pytest.approx(16.1)
    assert math.isnan(uk["kg_co2_per_unit"])  # no gas split for hotels
    # Countries DESNZ lists without a value this year (Argentina, Austria...) are left out.
    assert "hotel-stay-argentina" not in set(desnz.factors["factor_key"])


@official_files
def test_desnz_freight_tonne_km(desnz: FactorDataset) -> None:
    hgv = factor(desnz, "freight-hgv-all-hgvs-laden-average-tonne-km")
    assert hgv["kg_co2e_per_unit"] == pytest.approx(0.09752)
    assert (hgv["unit"], hgv["category_hint"]) == ("tonne.km", 4)
    assert factor(desnz, "freight-hgv-articulated-over-33t-laden-100-tonne-km")[
        "kg_co2e_per_unit"
    ] == pytest.approx(0.05789)
    assert factor(desnz, "freight-van-diesel-average-up-to-3-5-tonnes-tonne-km")[
        "kg_co2e_per_unit"
    ] == pytest.approx(0.61643)
    assert factor(desnz, "freight-sea-container-ship-average")["kg_co2e_per_unit"] == pytest.approx(0.01612)
    assert factor(desnz, "freight-rail")["kg_co2e_per_unit"] == pytest.approx(0.02779)
    assert factor(desnz, "freight-air-longhaul-with-rf")["kg_co2e_per_unit"] == pytest.approx(1.09904)


@official_files
def test_desnz_fuels_land_travel_waste_and_water(desnz: FactorDataset) -> None:
    gas = factor(desnz, "fuel-natural-gas-kwh-gross-cv")
    assert (gas["kg_co2e_per_unit"], gas["unit"], gas["scope"]) == (pytest.approx(0.1829), "kWh", 1)
    diesel = factor(desnz, "fuel-diesel-average-biofuel-blend-litre")
    assert diesel["kg_co2e_per_unit"] == pytest.approx(2.51279)
    car = factor(desnz, "car-average-unknown-km")
    assert (car["kg_co2e_per_unit"], car["unit"]) == (pytest.approx(0.16691), "km")
    assert factor(desnz, "rail-national-rail-passenger-km")["kg_co2e_per_unit"] == pytest.approx(0.03546)
    food = factor(desnz, "waste-organic-food-and-drink-waste-landfill")
    assert (food["kg_co2e_per_unit"], food["unit"]) == (pytest.approx(700.20961), "tonne")
    assert factor(desnz, "water-supply-m3")["kg_co2e_per_unit"] == pytest.approx(0.15311)
    assert factor(desnz, "water-treatment-m3")["kg_co2e_per_unit"] == pytest.approx(0.18574)


@official_files
def test_desnz_workbook_is_read_in_a_few_seconds() -> None:
    start = time.perf_counter()
    read_desnz(DESNZ_FILE)
    assert time.perf_counter() - start < 5.0


def test_desnz_refuses_a_file_that_is_not_a_workbook(tmp_path: Path) -> None:
    garbage = tmp_path / "conversion-factors.xlsx"
    garbage.write_bytes(b"this is not a spreadsheet\n" * 10)
    with pytest.raises(FactorFileError) as err:
        read_desnz(garbage)
    assert str(garbage) in str(err.value)
    assert "not a readable .xlsx workbook" in str(err.value)


@official_files
def test_desnz_refuses_a_truncated_workbook(tmp_path: Path) -> None:
    truncated = tmp_path / "conversion-factors.xlsx"
    truncated.write_bytes(DESNZ_FILE.read_bytes()[:100_000])
    with pytest.raises(FactorFileError, match=r"not a readable \.xlsx workbook"):
        read_desnz(truncated)


def _sheet_xml(workbook: zipfile.ZipFile, sheet: str) -> str:
    """The member of an .xlsx zip that holds a sheet, found through workbook.xml and its rels."""
    sheets = workbook.read("xl/workbook.xml").decode()
    rel_id = re.search(rf'<sheet name="{re.escape(sheet)}"[^>]*r:id="(rId\d+)"', sheets)
    assert rel_id, sheet
    rels = workbook.read("xl/_rels/workbook.xml.rels").decode()
    target = re.search(rf'Id="{rel_id.group(1)}"[^>]*Target="([^"]+)"', rels)
    assert target, sheet
    return "xl/" + target.group(1).removeprefix("/xl/")


def _patch_cell(source: Path, target: Path, sheet: str, cell: str, new_cell_xml: str) -> None:
    """Copy a workbook, replacing one cell of one sheet in the sheet's XML (the file is otherwise intact)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        sheet_path = _sheet_xml(zin, sheet)
        for name in zin.namelist():
            data = zin.read(name)
            if name == sheet_path:
                text, count = re.subn(rf'<c r="{cell}"[^>]*>.*?</c>', new_cell_xml, data.decode(), count=1)
                assert count == 1, cell
                data = text.encode()
            zout.writestr(name, data)


@official_files
def test_desnz_refuses_a_workbook_with_a_truncated_sheet(tmp_path: Path) -> None:
    damaged = tmp_path / "conversion-factors.xlsx"
    with zipfile.ZipFile(DESNZ_FILE) as zin, zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as zout:
        sheet_path = _sheet_xml(zin, "Hotel stay")
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, data[: len(data) // 2] if name == sheet_path else data)
    with pytest.raises(FactorFileError, match=r"sheet 'Hotel stay': the sheet cannot be read.*damaged"):
        read_desnz(damaged)


@official_files
def test_desnz_refuses_a_non_numeric_factor_naming_sheet_row_and_column(tmp_path: Path) -> None:
    edited = tmp_path / "conversion-factors.xlsx"
    # Hotel stay, row 29 is Australia: 35 kg CO2e per room night in the published file.
    _patch_cell(DESNZ_FILE, edited, "Hotel stay", "D29", '<c r="D29" t="inlineStr"><is><t>n/a</t></is></c>')
    with pytest.raises(FactorFileError) as err:
        read_desnz(edited)
    assert str(err.value) == (
        f"{edited}, sheet 'Hotel stay', row 29, column D ('kg CO2e'): 'n/a' is not a number"
    )


def test_desnz_refuses_a_workbook_that_is_not_the_conversion_factors(tmp_path: Path) -> None:
    other = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Introduction"
    wb.active["A1"] = "Some other spreadsheet"
    wb.save(other)
    with pytest.raises(FactorFileError, match=r"sheet 'Introduction': title .* not found"):
        read_desnz(other)


def test_desnz_refuses_a_workbook_without_the_full_set_sheets(tmp_path: Path) -> None:
    condensed = tmp_path / "condensed.xlsx"
    wb = openpyxl.Workbook()
    intro = wb.active
    intro.title = "Introduction"
    intro.append(["UK Government GHG Conversion Factors for Company Reporting"])
    intro.append(["Version:", 1.1, "Year:", 2024])
    intro.append(["The GWPs used ... are based on the IPCC Fifth Assessment Report (AR5) over 100 years."])
    wb.create_sheet("UK electricity")
    wb.save(condensed)
    with pytest.raises(FactorFileError) as err:
        read_desnz(condensed)
    assert "sheet(s) 'Fuels', 'Transmission and distribution'" in str(err.value)
    assert "'Hotel stay' not found" in str(err.value)


# ---------------------------------------------------------------------------------------------------
# Curated built-in factors
# ---------------------------------------------------------------------------------------------------


def test_builtin_rows_are_cited_and_unique() -> None:
    df = builtin_factors()
    assert df["citation"].notna().all() and df["citation"].str.strip().str.len().gt(20).all()
    assert not df.duplicated(["source", "factor_key"]).any()
    assert df["kg_co2e_per_unit"].gt(0).all()


def test_builtin_egrid_subregions_are_all_there_and_plausible() -> None:
    egrid = builtin_factors("egrid").set_index("factor_key")
    assert set(egrid.index) == EGRID_SUBREGIONS
    assert set(egrid["unit"]) == {"kWh"} and set(egrid["version"]) == {"2023"}
    assert (egrid["region"] == egrid.index).all()
    assert egrid["kg_co2e_per_unit"].between(0.05, 1.2).all()
    assert egrid["citation"].str.contains("SRC2ERTA").all()


def test_builtin_egrid_values_match_the_published_lb_per_mwh() -> None:
    egrid = builtin_factors("egrid").set_index("factor_key")
    # eGRID2023 SRC2ERTA, lb CO2e/MWh: CAMX 429.983, ERCT 736.629.
    assert egrid.at["CAMX", "kg_co2e_per_unit"] == pytest.approx(429.983 * LB_PER_MWH, abs=1e-6)
    assert egrid.at["ERCT", "kg_co2e_per_unit"] == pytest.approx(736.629 * LB_PER_MWH, abs=1e-6)
    # Every row's value is the lb/MWh its citation quotes, converted.
    quoted = egrid["citation"].str.extract(r"SRC2ERTA = ([\d.]+) lb", expand=False).astype(float)
    assert egrid["kg_co2e_per_unit"].to_numpy() == pytest.approx((quoted * LB_PER_MWH).to_numpy(), abs=1e-6)


def test_builtin_country_grid_factors() -> None:
    df = builtin_factors()
    grid = df[df["factor_key"].str.startswith("grid-")].set_index("factor_key")
    assert set(grid.index) == {"grid-GB", "grid-DE", "grid-FR", "grid-CN", "grid-IN", "grid-MX", "grid-JP"}
    assert (grid["region"] == grid.index.str.removeprefix("grid-")).all()
    assert set(grid["unit"]) == {"kWh"}
    assert grid.at["grid-GB", "kg_co2e_per_unit"] == pytest.approx(0.20705)
    assert grid["kg_co2e_per_unit"].between(0.01, 1.2).all()


@official_files
def test_builtin_gb_grid_factor_is_the_desnz_workbook_value(desnz: FactorDataset) -> None:
    gb = builtin_factors("desnz").set_index("factor_key").loc["grid-GB"]
    assert gb["version"] == desnz.version
    assert gb["kg_co2e_per_unit"] == factor(desnz, "uk-electricity-generation")["kg_co2e_per_unit"]
