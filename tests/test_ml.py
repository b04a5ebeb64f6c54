"""Issue 6: the supplier-intensity estimator, hotspots, meter anomalies and the model registry (all seeded)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import demo
from scope3lib.demo.synthetic import synthetic_suppliers
from scope3lib.errors import ModelNotFound, Scope3Error, TooFewReportingSuppliers, UnknownSector
from scope3lib.ml import anomalies as meter_anomalies
from scope3lib.ml import estimates, hotspots
from scope3lib.ml import registry as models_registry
from tests.helpers import TenantFactory, invoke_cli, run_cli


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return synthetic_suppliers(3000, seed=5)


@pytest.fixture(scope="module")
def trained(population: pd.DataFrame) -> estimates.Estimator:
    reporting = population[population["reports"]].assign(intensity=lambda f: f["true_intensity"])
    return estimates.train(reporting, seed=0)


def test_estimator_beats_the_eeio_baseline_on_held_out_suppliers(population: pd.DataFrame,
                                                                   trained: estimates.Estimator) -> None:
    ev = estimates.evaluate(trained, population[~population["reports"]])
    assert ev.loc["model", "mape_pct"] < ev.loc["eeio", "mape_pct"] - 2.0, ev
    assert ev.loc["model", "r2_log"] > ev.loc["eeio", "r2_log"] + 0.01, ev
    assert trained.metrics["beats_baseline"] == 1.0


def test_90pct_intervals_cover_85_to_95pct_of_held_out_suppliers(population: pd.DataFrame,
                                                                  trained: estimates.Estimator) -> None:
    heldout = population[~population["reports"]]
    ev = estimates.evaluate(trained, heldout)
    assert 0.85 <= ev.loc["model", "coverage"] <= 0.95, ev
    pred = trained.predict(heldout)
    assert (pred["lower"] < pred["estimate"]).all() and (pred["estimate"] < pred["upper"]).all()
    assert pred["confidence"].between(0, 1).all()
    assert set(pred["data_quality"]) <= {4, 5}


def test_fewer_estimates_are_confident_where_no_peer_reports(trained: estimates.Estimator,
                                                             population: pd.DataFrame) -> None:
    rows = population[~population["reports"]].head(2).copy()
    lonely = rows.assign(naics_code="562212")  # landfills: the rarest sector, few reporting peers
    known = rows.assign(naics_code="332710")  # machining: the most common one
    assert trained.peers.get("562212", 0) < trained.peers["332710"]
    assert (trained.predict(lonely)["confidence"].to_numpy() < trained.predict(known)["confidence"].to_numpy()).all()


def test_too_few_reporting_suppliers_is_refused_with_an_eeio_fallback(population: pd.DataFrame) -> None:
    few = population[population["reports"]].head(12).assign(intensity=lambda f: f["true_intensity"])
    with pytest.raises(TooFewReportingSuppliers, match=r"only 12 suppliers .* at least 30 .* EEIO") as info:
        estimates.train(few)
    assert (info.value.found, info.value.needed) == (12, 30)
    fallback = estimates.eeio_estimates(population.head(5), str(info.value))
    np.testing.assert_allclose(fallback["estimate"], population.head(5)["sector_factor"])
    assert (fallback["basis"] == "eeio").all() and (fallback["data_quality"] == 4).all()


def test_unknown_sector_is_refused_by_name(trained: estimates.Estimator, population: pd.DataFrame) -> None:
    odd = population.head(3).assign(naics_code=["999999", "332710", "123456"])
    with pytest.raises(UnknownSector, match=r"123456, 999999 have no EEIO factor"):
        trained.predict(odd)
    with pytest.raises(UnknownSector):
        estimates.eeio_estimates(odd, "fallback")


def test_model_round_trips_through_skops_by_version(tmp_path: Path, trained: estimates.Estimator,
                                                    population: pd.DataFrame) -> None:
    v1 = models_registry.save(tmp_path, "acme", trained)
    reporting = population[population["reports"]].head(400).assign(intensity=lambda f: f["true_intensity"])
    v2 = models_registry.save(tmp_path, "acme", estimates.train(reporting, seed=1))
    assert (v1, v2) == ("v1", "v2")
    loaded = models_registry.load(tmp_path, "acme", "v1")
    sample = population.head(200)
    pd.testing.assert_series_equal(loaded.predict(sample)["estimate"], trained.predict(sample)["estimate"])
    assert (loaded.predict(sample)["model_version"] == "v1").all()
    assert models_registry.load(tmp_path, "acme").version == "v2"
    assert loaded.fingerprint == trained.fingerprint and loaded.metrics == trained.metrics
    table = models_registry.versions(tmp_path, "acme")
    assert list(table["version"]) == ["v1", "v2"]
    # skops, not pickle: the file is a zip archive of a schema and arrays.
    path = models_registry.registry_dir(tmp_path, "acme") / "v1.skops"
    assert path.read_bytes()[:2] == b"PK"
    with pytest.raises(ModelNotFound, match=r"no model 'v9' \(stored: v1, v2\)"):
        models_registry.load(tmp_path, "acme", "v9")
    with pytest.raises(ModelNotFound, match="scope3 ml train globex"):
        models_registry.load(tmp_path, "globex")
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(Scope3Error, match="changed since it was stored"):
        models_registry.load(tmp_path, "acme", "v1")


def _demo_truth(seed: int, n: int) -> pd.DataFrame:
    data = demo.generate(demo.DemoProfile("x", "X", "free", seed=seed, suppliers=n))
    t = data.truth.merge(data.suppliers[["name", "annual_spend"]], on="name")
    t["category"] = t["naics_code"].map({k: c for k, (c, _) in demo.SECTORS.items()})
    return t.assign(intensity=t["true_intensity"], spend_usd=t["annual_spend"],
                    kg_co2e=t["annual_spend"] * t["true_intensity"])


def test_planted_hotspots_are_found_and_explained() -> None:
    t = _demo_truth(seed=23, n=1000)
    scored = hotspots.score_suppliers(t)
    found = scored["flagged"] & scored["outlier"]
    assert found.sum() / scored["outlier"].sum() >= 0.8
    assert found.sum() / scored["flagged"].sum() >= 0.7
    h = hotspots.hotspots(t)
    assert h["kg_at_stake"].is_monotonic_decreasing and (h["kg_at_stake"] > 0).all()
    assert h["explanation"].str.fullmatch(r"intensity \d+\.\d× the sector median \(NAICS \d{6}\), \d+% of category "
                                          r"\d+; robust z -?\d+\.\d(; isolated by the forest)?").all()
    worst = h.iloc[0]
    assert f"{worst['intensity_ratio']:.1f}×" in worst["explanation"]


def test_no_hotspot_when_every_supplier_sits_at_its_sector_factor() -> None:
    t = _demo_truth(seed=11, n=300)
    t["intensity"] = t["sector_factor"]
    assert hotspots.hotspots(t).empty


def test_reporters_among_eeio_billed_suppliers_are_not_all_flagged() -> None:
    # As in a tenant's inventory: most suppliers at their EEIO factor (no spread), a quarter disclosing.
    t = _demo_truth(seed=23, n=1000)
    t["intensity"] = t["true_intensity"].where(t["reports"], t["sector_factor"])
    scored = hotspots.score_suppliers(t)
    ordinary = t["reports"] & ~t["outlier"]
    assert scored.loc[ordinary, "flagged"].mean() < 0.05
    planted = t["reports"] & t["outlier"]
    assert scored.loc[planted, "flagged"].mean() >= 0.8


def test_planted_meter_faults_are_found_and_clean_meters_are_quiet() -> None:
    readings, planted = meter_anomalies.synthetic_readings(16, 28, seed=3)
    found = meter_anomalies.findings(readings)
    assert meter_anomalies.recall(found, planted) == 1.0
    assert set(found["kind"]) == {"gap", "stuck", "spike", "drift"}
    assert list(found.columns) == meter_anomalies.FINDING_COLUMNS
    clean, _ = meter_anomalies.synthetic_readings(16, 28, seed=4, faults=False)
    assert meter_anomalies.findings(clean).empty
    flagged = meter_anomalies.flag_readings(readings)
    assert len(flagged) == len(readings)  # nothing dropped
    spike = planted[planted["kind"] == "spike"].iloc[0]
    hit = flagged[(flagged["device_key"] == spike["device_key"]) & (flagged["ts"] == spike["start"])]
    assert list(hit["anomaly"]) == ["spike"]


@pytest.mark.db
def test_tenant_train_predict_store_ml_entries_with_version_and_interval(database_url: str, data_dir: Path,
                                                                        make_tenant: TenantFactory) -> None:
    made = make_tenant(name="ML tenant", synthetic=True, suppliers=800, seed=21)
    new_slug, frame, tenant = made.slug, made.data.truth, made.engine
    est = estimates.train_tenant(tenant, data_dir, new_slug)
    assert est.version == "v1" and est.metrics["suppliers"] == frame["reports"].sum()
    assert est.metrics["beats_baseline"] == 1.0, est.metrics
    before = pd.read_sql("SELECT supplier_id, method, kg_co2e, factor_source FROM emission_entries", tenant)
    out = estimates.predict_tenant(tenant, data_dir, new_slug)
    assert out.basis == "ml" and out.model_version == "v1"
    assert out.entries_updated == 12 * (~frame["reports"]).sum()
    after = pd.read_sql("SELECT supplier_id, method, kg_co2e, factor_source, factor_version, data_source, "
                        "data_quality, description FROM emission_entries", tenant)
    ml = after[after["data_source"] == "ml"]
    assert len(ml) == out.entries_updated
    assert (ml["factor_source"] == "ml-estimator").all() and (ml["factor_version"] == "v1").all()
    assert ml["data_quality"].isin([4, 5]).all()
    assert ml["description"].str.contains(r"\| ML estimate [\d.e+-]+ kg CO2e/USD \(90% interval [\d.e+-]+-[\d.e+-]+",
                                          regex=True).all()
    # Supplier data is never overwritten by an estimate.
    own = before["method"] == "supplier_specific"
    merged = before[own].merge(after, on=["supplier_id", "kg_co2e"], how="left", suffixes=("", "_a"))
    assert (merged["factor_source_a"] == "supplier").all()
    # Predicting again replaces the estimate, it does not stack notes.
    estimates.predict_tenant(tenant, data_dir, new_slug)
    again = pd.read_sql("SELECT description FROM emission_entries WHERE data_source = 'ml'", tenant)
    assert (again["description"].str.count(re.escape(" | ML ")) == 1).all()
    share = estimates.estimated_share(tenant)
    assert share["ml_share"].between(0, 1).all() and share["ml_share"].max() > 0
    assert not hotspots.tenant_hotspots(tenant).empty
    tenant.dispose()
    # The CLI over the same tenant (in process: the subprocess path is covered by the refusal test).
    report = invoke_cli(database_url, data_dir, "ml", "report", new_slug)
    assert report.exit_code == 0, report.output
    assert re.search(r"^model\s+[\d.]+\s+0\.\d+\s+0\.\d+\s+\d+\s+v1$", report.output, re.M), report.output
    dry = invoke_cli(database_url, data_dir, "ml", "predict", new_slug, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"estimated {(~frame['reports']).sum()} suppliers; dry run: nothing written" in dry.output, dry.output
    hot = invoke_cli(database_url, data_dir, "ml", "hotspots", new_slug, "--limit", "3")
    assert hot.exit_code == 0 and "× the sector median" in hot.output, hot.output


@pytest.mark.db
def test_cli_train_refuses_too_few_reporters_and_predict_falls_back(engine: Engine, database_url: str,
                                                                   data_dir: Path, make_tenant: TenantFactory) -> None:
    new_slug = make_tenant(name="Few", synthetic=True, suppliers=60, seed=2).slug  # ~15 reporting suppliers
    train = run_cli(database_url, data_dir, "ml", "train", new_slug)
    assert train.returncode == 1 and "Traceback" not in train.stderr
    assert re.fullmatch(r"error: only \d+ suppliers report .* EEIO spend-based factors .*\n", train.stderr)
    pred = run_cli(database_url, data_dir, "ml", "predict", new_slug)
    assert pred.returncode == 0, pred.stderr
    assert "fell back to EEIO, nothing written" in pred.stderr
    with engine.connect() as conn:
        ml_rows = conn.scalar(sa.text("SELECT count(*) FROM emission_entries e JOIN tenants t ON t.id = e.tenant_id "
                                      "WHERE t.slug = :s AND e.data_source = 'ml'"), {"s": new_slug})
    assert ml_rows == 0
    with pytest.raises(ModelNotFound, match=f"run `scope3 ml train {new_slug}` first"):
        estimates.report_tenant(data_dir, new_slug)
