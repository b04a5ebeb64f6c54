"""Demo data: realistic, reproducible, and loadable into a tenant; the simulator feeds the ingest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sqlalchemy.engine import Engine

from scope3lib import demo
from scope3lib.meters.broker import MqttParams
from scope3lib.meters.simulator import load_shape
from tests.helpers import TenantFactory, count_readings, run_cli, start_ingest_service, wait_until

PROFILE = demo.DEMO_TENANTS[0]


def test_generator_is_realistic_and_reproducible() -> None:
    a, b = demo.generate(PROFILE), demo.generate(PROFILE)
    pd_equal = a.entries.equals(b.entries) and a.suppliers.equals(b.suppliers)
    assert pd_equal
    s, e = a.suppliers, a.entries
    assert len(s) >= 200 and s["name"].is_unique
    assert s["naics_code"].nunique() >= 20
    assert e["category"].nunique() >= 8
    assert sorted(e["period_start"].unique()) == [dt.date(PROFILE.year, m, 1) for m in range(1, 13)]
    # Log-normal spend: heavy right tail, median well below the mean.
    assert s["annual_spend"].mean() > 1.5 * s["annual_spend"].median()
    assert a.devices["grid_region"].nunique() >= 3
    # Entries are traceable: spend x the factor applied gives kg CO2e.
    assert np.allclose(e["spend"] * e["factor_value"], e["kg_co2e"])
    spend_based = e[e["method"] == "spend_based"]
    assert (spend_based["factor_source"] == "epa-useeio").all() and (spend_based["data_quality"] == 4).all()
    # Ground truth: true intensity = sector factor x hidden effect; planted outliers exist.
    t = a.truth
    assert np.allclose(t["true_intensity"], t["sector_factor"] * t["effect"])
    assert t["outlier"].sum() >= 1
    other = demo.generate(demo.DEMO_TENANTS[1])
    assert not other.suppliers["name"].equals(s["name"])


def test_load_into_tenant_visible_to_its_role(engine: Engine, make_tenant: TenantFactory) -> None:
    creds = make_tenant(name="Demo")  # empty: loading the demo data is what is tested
    slug = creds.slug
    data = demo.generate(PROFILE)
    demo.load(engine, slug, data)
    with psycopg.connect(creds.database_url) as c:
        n_sup, n_ent, total = c.execute(
            "SELECT (SELECT count(*) FROM suppliers), count(*), sum(kg_co2e) FROM emission_entries").fetchone()  # type: ignore[misc]
    assert (n_sup, n_ent) == (len(data.suppliers), len(data.entries))
    assert total == pytest.approx(data.entries["kg_co2e"].sum())
    with pytest.raises(Exception, match="already has suppliers"):
        demo.load(engine, slug, data)


def test_load_shape_has_day_and_week() -> None:
    monday_noon = dt.datetime(2026, 11, 23, 13, tzinfo=dt.UTC)
    assert load_shape(monday_noon, 0) == pytest.approx(1.0)
    assert load_shape(monday_noon.replace(hour=2), 0) < 0.4
    assert load_shape(monday_noon + dt.timedelta(days=5), 0) == pytest.approx(0.6)


@pytest.mark.db
@pytest.mark.broker
def test_simulator_readings_all_arrive(engine: Engine, database_url: str, data_dir: Path, broker: MqttParams,
                                       ingest_url: str, make_tenant: TenantFactory) -> None:
    slug = make_tenant(name="Sim", plan="starter").slug
    svc = start_ingest_service(ingest_url, broker, client_id=f"ingest-{slug}", batch_ms=50)
    try:
        r = run_cli(database_url, data_dir, "meters", "simulate", "--tenant", slug, "--devices", "4", "--rate", "40",
                    "--duration", "3", env={"SCOPE3_MQTT_URL": broker.url()})
        assert r.returncode == 0, r.stderr
        published = int(r.stdout.split()[1])
        assert published >= 80

        def stored() -> int:
            return count_readings(engine, slug=slug)

        wait_until(lambda: stored() >= published, 20, "every published reading stored", interval=0.2)
        assert stored() == published
    finally:
        svc.stop()
