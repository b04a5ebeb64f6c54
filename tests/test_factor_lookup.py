"""The one factor lookup: its rule on the built-in set, and a newer grid release reaching the meter rollup.

The store test runs in a database of its own: importing a grid release changes what every tenant's next
rollup uses, which must not leak into other test modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import db, schema, tenancy
from scope3lib.accounting import inventory
from scope3lib.factors import FactorDataset, lookup, sources, store
from scope3lib.factors.dataset import factors_frame
from scope3lib.meters import devices, rollup
from tests.conftest import _create_database, _drop_database

TODAY = dt.datetime.now(dt.UTC).date()
DAY1, DAY2, DAY3 = (TODAY - dt.timedelta(days=d) for d in (3, 2, 1))
EGRID_2023_CAMX = 0.195037  # builtin.csv, eGRID2023 SRC2ERTA for CAMX
EGRID_2024_CAMX = 0.181  # a made-up newer release, to see it chosen


def test_the_rule_on_the_builtin_set() -> None:
    f = lookup.grid_factor(None, "camx", 2030)  # any later year takes the latest earlier one
    assert f is not None and (f.source, f.version, f.year) == ("egrid", "2023", 2023)
    assert f.value == pytest.approx(EGRID_2023_CAMX)
    assert lookup.grid_factor(None, "GB", 2023) is None  # DESNZ 2024 is later: never used for 2023
    assert lookup.grid_factor(None, "NARNIA", 2025) is None  # not guessed
    eeio = lookup.sector_factors(None)
    assert eeio["327310"] == pytest.approx(3.924)  # cement, EPA USEEIO v1.3.0 with margins
    assert {"CAMX", "GB", "DE", "FR"} <= set(lookup.grid_regions(None))
    rows = lookup.grid_factors(None, pd.Series(["CAMX", "camx", "ZZ"]), pd.Series([2025, 2024, 2025]))
    assert rows["factor_key"].tolist()[:2] == ["CAMX", "CAMX"] and pd.isna(rows["factor_value"].iloc[2])


def test_sources_registry_lists_each_source_once_with_its_kind() -> None:
    names = [s.name for s in sources.sources()]
    assert names == sorted(set(names)) and {"epa-useeio", "desnz", "egrid", "ember"} <= set(names)
    assert sources.grid_sources()[:3] == ["egrid", "desnz", "ember"]
    assert sources.sector_sources() == ["epa-useeio"]
    assert {"epa-useeio", "desnz", "defra"} <= set(sources.importable())
    assert sources.get("DEFRA") is sources.get("desnz")
    with pytest.raises(Exception, match="unknown factor source 'nope'"):
        sources.get("nope")


@pytest.fixture(scope="module")
def own_db(server_admin_url: str) -> Iterator[Engine]:
    name, url = _create_database(server_admin_url)
    engine = db.create_engine(url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()
    _drop_database(server_admin_url, name)


def _readings(engine: Engine, slug: str, device: str, rows: list[tuple[dt.date, int, float]]) -> None:
    """Readings of (day, hour, kWh), written as the ingest writes them."""
    with engine.begin() as c:
        dev_id, tid = c.execute(sa.text(
            "SELECT d.id, d.tenant_id FROM devices d JOIN tenants t ON t.id = d.tenant_id "
            "WHERE t.slug = :s AND d.device_key = :k"), {"s": slug, "k": device}).one()
        c.execute(sa.text("INSERT INTO readings (device_id, ts, tenant_id, kwh) VALUES (:d, :ts, :t, :kwh) "
                          "ON CONFLICT DO NOTHING"),
                  [{"d": dev_id, "ts": dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC), "t": tid,
                    "kwh": kwh} for day, hour, kwh in rows])


def _meter_entries(engine: Engine) -> pd.DataFrame:
    return db.read_frame(engine, "SELECT period_start, activity_quantity, factor_version, factor_value, kg_co2e "
                                 "FROM emission_entries WHERE data_source = 'iot' ORDER BY period_start")


def test_a_newer_grid_release_prices_the_next_days_and_leaves_recorded_and_closed_days(
        own_db: Engine, tmp_path: Path) -> None:
    creds = tenancy.create_tenant(own_db, tmp_path, "lookup", "Lookup", "enterprise")
    devices.add_device(own_db, "lookup", "m1", "CAMX")
    _readings(own_db, "lookup", "m1", [(DAY1, 9, 10.0), (DAY2, 9, 20.0)])
    rollup.rollup_daily(own_db, "lookup")
    before = _meter_entries(own_db)
    assert before["factor_version"].tolist() == ["2023", "2023"]
    tenant = db.create_engine(creds.database_url)
    inventory.create_period(tenant, "day one", DAY1, DAY1)
    inventory.close_period(tenant, "day one")

    newer = FactorDataset(
        source="egrid", name="eGRID2024 (test release)", version="2024", publisher="US EPA",
        licence="US Government work (public domain)", citation="test release", sha256="0" * 64,
        factors=factors_frame([{"factor_key": "CAMX", "description": "CAMX 2024", "unit": "kWh", "region": "CAMX",
                                "year": 2024, "kg_co2e_per_unit": EGRID_2024_CAMX, "gwp": "AR5"}]))
    assert store.import_dataset(own_db, newer).status == "imported"
    assert lookup.grid_factor(own_db, "CAMX", DAY3.year).version == "2024"  # type: ignore[union-attr]

    late = [(DAY1, 10, 1.5), (DAY2, 10, 2.5), (DAY3, 9, 30.0)]  # late readings on recorded days, and a new day
    _readings(own_db, "lookup", "m1", late)
    result = rollup.rollup_daily(own_db, "lookup")
    after = _meter_entries(own_db).set_index("period_start")
    assert result.closed_days == [{"device": "m1", "day": str(DAY1)}]
    assert after.loc[DAY1].to_dict() == before.set_index("period_start").loc[DAY1].to_dict()  # closed: unchanged
    assert (after.loc[DAY2, "factor_version"], after.loc[DAY2, "activity_quantity"]) == ("2023", 22.5)  # recorded
    assert after.loc[DAY2, "kg_co2e"] == pytest.approx(22.5 * EGRID_2023_CAMX)
    assert after.loc[DAY3, "factor_version"] == "2024"  # the new release, recorded with the day
    assert after.loc[DAY3, "kg_co2e"] == pytest.approx(30.0 * EGRID_2024_CAMX)
    tenant.dispose()
