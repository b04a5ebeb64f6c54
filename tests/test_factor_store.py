"""Factor datasets in PostgreSQL: built-in set, official imports, idempotence, versions, who may write.

Official files are the publishers' own, in ../shared/data/factors (see test_factor_importers.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib.errors import FactorFileError
from scope3lib.factors import store
from tests.helpers import TenantFixture, run_cli

FACTORS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "factors"
EPA_FILE = FACTORS_DIR / "SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv"
DESNZ_FILE = FACTORS_DIR / "ghg-conversion-factors-2024-full_set__for_advanced_users__v1_1.xlsx"

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", autouse=True)
def official_factor_files() -> None:
    for f in (EPA_FILE, DESNZ_FILE):
        assert f.is_file(), f"official factor file missing: {f} (shared/data/factors beside the repository)"


def value(engine: Engine, source: str, version: str, key: str) -> float:
    df = store.list_factors(engine, source, version)
    rows = df[df["factor_key"] == key]
    assert len(rows) == 1, f"{source} {version} {key}: {len(rows)} rows"
    return float(rows.iloc[0]["kg_co2e_per_unit"])


def test_migration_loads_the_builtin_set(engine: Engine) -> None:
    ds = store.datasets(engine).set_index(["source", "version"])
    assert ds.loc[("egrid", "2023"), "factors"] == 27
    assert ds.loc[("ember", "2023"), "licence"] == "CC BY 4.0"
    assert value(engine, "egrid", "2023", "CAMX") == pytest.approx(0.195037)
    assert store.ensure_builtin(engine) == 0  # idempotent


def test_epa_import_completes_the_builtin_subset_then_is_a_no_op(engine: Engine) -> None:
    first = store.import_file(engine, "epa-useeio", EPA_FILE)
    assert first.status in ("completed", "unchanged")
    assert first.factors == 1016
    assert value(engine, "epa-useeio", "1.3.0", "327310") == 3.924  # Cement, with margins, per 2022 USD
    again = store.import_file(engine, "epa-useeio", EPA_FILE)
    assert again.status == "unchanged" and again.added == 0
    assert "already imported" in again.message()
    ds = store.datasets(engine)
    epa = ds[(ds["source"] == "epa-useeio") & (ds["version"] == "1.3.0")].iloc[0]
    assert epa["sha256"].startswith("c7f50864") and not epa["builtin"]


def test_desnz_import_uk_electricity_generated(engine: Engine) -> None:
    outcome = store.import_file(engine, "desnz", DESNZ_FILE)
    assert outcome.status in ("completed", "unchanged")
    assert value(engine, "desnz", "2024-v1.1", "uk-electricity-generation") == 0.20705
    assert value(engine, "desnz", "2024-v1.1", "grid-GB") == 0.20705  # the built-in alias is kept
    assert store.import_file(engine, "defra", DESNZ_FILE).status == "unchanged"


def test_a_new_version_is_a_new_dataset_and_a_changed_file_never_overwrites(engine: Engine, tmp_path: Path) -> None:
    store.import_file(engine, "epa-useeio", EPA_FILE)
    renamed = tmp_path / "SupplyChainGHGEmissionFactors_v1.3.7_NAICS_CO2e_USD2022.csv"
    renamed.write_text(EPA_FILE.read_text(encoding="utf-8-sig"))
    try:
        new = store.import_file(engine, "epa-useeio", renamed)
        assert (new.status, new.version, new.factors) == ("imported", "1.3.7", 1016)
        assert value(engine, "epa-useeio", "1.3.0", "327310") == 3.924  # the old version is untouched
        # Same release name, different bytes: refused, never stored over the first.
        changed = tmp_path / "SupplyChainGHGEmissionFactors_v1.3.7_NAICS_CO2e_USD2022 (1).csv"
        changed.write_text(EPA_FILE.read_text(encoding="utf-8-sig") + "\n")
        with pytest.raises(FactorFileError, match="is never overwritten"):
            store.import_file(engine, "epa-useeio", changed)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM factor_datasets WHERE source = 'epa-useeio' AND version = '1.3.7'"))


def test_tenant_roles_read_factors_but_cannot_write(tenant_a: TenantFixture) -> None:
    tenant = tenant_a.engine
    assert store.list_factors(tenant, "egrid", "2023").shape[0] == 27
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), tenant.begin() as conn:
        conn.execute(sa.text("UPDATE factors SET kg_co2e_per_unit = 0"))
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), tenant.begin() as conn:
        conn.execute(sa.text("INSERT INTO factor_datasets (source, version, name, publisher, licence, citation) "
                             "VALUES ('x', 'y', 'n', 'p', 'l', 'c')"))


def test_cli_import_twice_and_list_as_csv(database_url: str, data_dir: Path, tmp_path: Path) -> None:
    first = run_cli(database_url, data_dir, "factors", "import", "epa-useeio", str(EPA_FILE))
    assert first.returncode == 0, first.stderr
    second = run_cli(database_url, data_dir, "factors", "import", "epa-useeio", str(EPA_FILE))
    assert second.returncode == 0 and "nothing changed" in second.stdout
    listed = run_cli(database_url, data_dir, "factors", "list", "--source", "epa-useeio", "--version", "1.3.0",
                     "--format", "csv")
    assert listed.returncode == 0, listed.stderr
    out = tmp_path / "epa.csv"
    out.write_text(listed.stdout)
    df = pd.read_csv(out, dtype={"factor_key": str})
    assert list(df.columns) == ["factor_key", "description", "unit", "region", "year", "kg_co2e_per_unit"]
    assert len(df) == 1016
    assert df.set_index("factor_key").loc["327310", "kg_co2e_per_unit"] == 3.924
    bad = run_cli(database_url, data_dir, "factors", "list", "--source", "nope")
    assert bad.returncode == 1 and "no factor dataset 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    missing = tmp_path / "none.csv"
    gone = run_cli(database_url, data_dir, "factors", "import", "desnz", str(missing))
    assert gone.returncode == 1 and "no such file" in gone.stderr
