"""Issue 6 where people see it: the nightly estimates report and the analyst notebook, run as a tenant.

Both notebooks run under papermill with the tenant's read-write role only, as the report scheduler and
the hub run them: no admin URL in the kernel.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import demo
from scope3lib.errors import ConfigurationError
from scope3lib.ml import estimates
from scope3lib.ml import registry as models_registry
from scope3lib.reporting import runs as reports
from tests.helpers import TenantFactory, TenantFixture

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[1]
ANALYST = REPO / "notebooks" / "analyst" / "ml_estimates.ipynb"
ML_ENTRIES = ("SELECT id, supplier_id, kg_co2e, factor_source, factor_version, factor_value, data_quality, "
              "description FROM emission_entries WHERE data_source = 'ml' ORDER BY id")


def outputs(path: Path) -> str:
    """Everything the executed notebook shows: printed text, Markdown, tables."""
    nb = nbformat.read(str(path), as_version=4)
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            data = out.get("data", {})
            parts.extend(str(data.get(kind, "")) for kind in ("text/markdown", "text/plain", "text/html"))
    return "\n".join(parts)


def ledger_size(engine: Engine, slug: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT coalesce(max(h.size), 0) FROM ledger_heads h JOIN tenants t "
                                       "ON t.id = h.tenant_id WHERE t.slug = :s"), {"s": slug}) or 0)


def nightly(creds: TenantFixture, out: Path, data_dir: Path, retries: int = 1,
            **params: object) -> reports.RunResult:
    spec = reports.get_spec("nightly_estimates").model_copy(update={"retries": retries})
    return reports.run_report(creds.engine, creds.database_url, creds.slug, "nightly_estimates",
                              spec, dict(params), output_root=out, data_dir=data_dir)


@dataclass
class TwoRuns:
    creds: TenantFixture
    frame: pd.DataFrame
    first: reports.RunResult
    after_first: pd.DataFrame
    ledger_after_first: int
    second: reports.RunResult
    after_second: pd.DataFrame
    ledger_after_second: int


@pytest.fixture(scope="module")
def two_runs(engine: Engine, data_dir: Path, make_module_tenant: TenantFactory,
             tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """A tenant whose reporting suppliers teach the model something (the synthetic truth of
    ``synthetic_suppliers``), and two nightly runs one after the other."""
    creds = make_module_tenant("nightly-ml", name="Nightly ML", synthetic=True, suppliers=800, seed=21)
    frame = creds.data.truth  # one row per supplier: whether it reports
    tenant = creds.engine
    out = tmp_path_factory.mktemp("nightly")
    first = nightly(creds, out, data_dir)
    after_first = pd.read_sql(ML_ENTRIES, tenant)
    ledger_first = ledger_size(engine, creds.slug)
    second = nightly(creds, out, data_dir)
    after_second = pd.read_sql(ML_ENTRIES, tenant)
    return TwoRuns(creds, frame, first, after_first, ledger_first, second, after_second,
                   ledger_size(engine, creds.slug))


def test_nightly_report_writes_ml_estimates_with_model_version_and_interval(two_runs: TwoRuns,
                                                                           data_dir: Path) -> None:
    r = two_runs
    assert r.first.status == "succeeded", r.first.error
    non_reporting = int((~r.frame["reports"]).sum())
    ml = r.after_first
    assert len(ml) == 12 * non_reporting  # every month of every supplier without its own data
    assert ml["supplier_id"].nunique() == non_reporting
    assert (ml["factor_source"] == "ml-estimator").all() and (ml["factor_version"] == "v1").all()
    assert ml["data_quality"].isin([4, 5]).all()
    assert ml["description"].str.contains(
        r" \| ML estimate [\d.e+-]+ kg CO2e/USD \(90% interval [\d.e+-]+-[\d.e+-]+, confidence 0\.\d\d\); "
        r"EEIO epa-useeio \d{6} = [\d.e+-]+; model v1$", regex=True).all()
    # The model the report trained is in the tenant's registry, where `scope3 ml report` finds it.
    assert list(models_registry.versions(data_dir, r.creds.slug)["version"]) == ["v1"]
    assert r.first.output_ipynb is not None
    shown = outputs(r.first.output_ipynb)
    assert "Trained model **v1**" in shown
    assert f"Estimated **{non_reporting:,} suppliers** without supplier-specific data with model **v1**" in shown
    assert f"{len(ml):,} entries updated" in shown
    assert re.search(r"MAPE \*\*[\d.]+%\*\* against \*\*[\d.]+%\*\* for the EEIO factor alone", shown), shown
    assert re.search(r"[\d.]+% of the inventory \([\d,.]+ of [\d,.]+ t CO2e\) is estimated by the ML model", shown)
    html = r.first.output_html.read_text() if r.first.output_html else ""
    assert "Estimates are not supplier data." in html and "import scope3lib" not in html


def test_a_second_nightly_run_changes_nothing(two_runs: TwoRuns, data_dir: Path) -> None:
    r = two_runs
    assert r.second.status == "succeeded", r.second.error
    # Same entries, same values: no estimate was duplicated or re-applied on top of the first.
    pd.testing.assert_frame_equal(r.after_second, r.after_first)
    assert (r.after_second["description"].str.count(re.escape(" | ML ")) == 1).all()
    # No rewrite of unchanged entries, so the ledger did not grow; and no second model was trained.
    assert r.ledger_after_second == r.ledger_after_first
    assert list(models_registry.versions(data_dir, r.creds.slug)["version"]) == ["v1"]
    assert r.second.output_ipynb is not None
    shown = outputs(r.second.output_ipynb)
    assert "No retraining asked for: used the stored model." in shown
    assert "no entry changed (they already hold these estimates)" in shown


def test_stored_estimates_read_back_each_suppliers_estimate_and_interval(two_runs: TwoRuns) -> None:
    stored = estimates.stored_estimates(two_runs.creds.engine)
    assert len(stored) == (~two_runs.frame["reports"]).sum() and (stored["entries"] == 12).all()
    values = stored[["estimate", "lower", "upper", "confidence", "eeio_factor"]]
    assert values.notna().all().all()
    assert ((stored["lower"] < stored["estimate"]) & (stored["estimate"] < stored["upper"])).all()
    assert stored["confidence"].between(0, 1).all() and (stored["model_version"] == "v1").all()
    assert stored["kg_co2e"].is_monotonic_decreasing
    # What is read back from the words is the factor the entries were calculated with (4 significant digits).
    factor = two_runs.after_first.groupby("supplier_id")["factor_value"].first()
    np.testing.assert_allclose(stored["estimate"], factor.loc[stored["supplier_id"]].to_numpy(), rtol=5e-4)


def test_tenant_models_names_the_connected_tenant_only(two_runs: TwoRuns, engine: Engine, data_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = two_runs.creds.engine
    monkeypatch.setenv("SCOPE3_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SCOPE3_TENANT", raising=False)
    assert estimates.tenant_models(tenant) == (data_dir, "nightly-ml")
    monkeypatch.setenv("SCOPE3_TENANT", "someone-else")
    with pytest.raises(ConfigurationError, match="SCOPE3_TENANT is 'someone-else' but the database role belongs "
                                                 "to tenant 'nightly-ml'"):
        estimates.tenant_models(tenant)
    with pytest.raises(ConfigurationError, match="not a tenant's role"):
        estimates.tenant_models(engine)  # the admin connection belongs to no tenant


def test_a_nightly_run_with_a_model_version_that_does_not_exist_fails_and_says_why(
        two_runs: TwoRuns, data_dir: Path, tmp_path: Path) -> None:
    result = nightly(two_runs.creds, tmp_path, data_dir, retries=0, model_version="v9")
    assert result.status == "failed" and result.failed_cell == 1
    assert result.error == "ModelNotFound: tenant 'nightly-ml' has no model 'v9' (stored: v1)"
    both = nightly(two_runs.creds, tmp_path, data_dir, retries=0, retrain=True, model_version="v1")
    assert both.status == "failed" and both.error is not None
    assert both.error.startswith("InvalidArgument: retrain trains a new model version")
    assert list(models_registry.versions(data_dir, two_runs.creds.slug)["version"]) == ["v1"]


def test_nightly_report_falls_back_to_eeio_on_the_demo_tenant_and_says_so(make_tenant: TenantFactory,
                                                                          data_dir: Path, tmp_path: Path) -> None:
    # Demo data whose supplier effects are independent of anything known about a supplier (learnable=False,
    # scope3lib.demo.data.supplier_effect): the model cannot beat the EEIO factor out of fold there, so the run
    # trains, refuses to use it, and says so.
    creds = make_tenant("nightly-demo", name="Nightly Demo",
                        demo_profile=dataclasses.replace(demo.DEMO_TENANTS[0], suppliers=220, learnable=False))
    result = nightly(creds, tmp_path, data_dir)
    assert result.status == "succeeded", result.error
    assert result.output_ipynb is not None
    shown = outputs(result.output_ipynb)
    assert "Trained model **v1**" in shown
    assert re.search(r"\*\*Fell back to EEIO\*\*: model v1 did not beat the EEIO baseline out of fold \(MAPE "
                     r"[\d.]+% vs [\d.]+%\)\. Nothing written", shown), shown
    assert "It does **not** beat the baseline, so estimates fall back to the EEIO factors" in shown
    with creds.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM emission_entries WHERE data_source = 'ml'")) == 0


def test_nightly_report_with_too_few_reporting_suppliers_keeps_eeio_and_says_so(make_tenant: TenantFactory,
                                                                                data_dir: Path,
                                                                                tmp_path: Path) -> None:
    # ~15 reporting suppliers
    creds = make_tenant("nightly-few", name="Nightly Few", synthetic=True, suppliers=60, seed=2)
    result = nightly(creds, tmp_path, data_dir)
    assert result.status == "succeeded", result.error
    assert result.output_ipynb is not None
    shown = outputs(result.output_ipynb)
    assert re.search(r"Training refused: only \d+ suppliers report supplier-specific intensities; the estimator "
                     r"needs at least 30", shown), shown
    assert "**Fell back to EEIO**: no model could be trained (above). Nothing written" in shown
    assert re.search(r"None of the inventory \([\d,.]+ t CO2e\) is estimated by the ML model; [\d.]+% rests on "
                     r"EEIO spend-based sector factors", shown), shown
    assert "No trained model for tenant `nightly-few`" in shown
    assert models_registry.versions(data_dir, creds.slug).empty


@pytest.fixture
def hub_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What the hub gives an analyst's server: nothing of the platform's but the tenant (set by the test)."""
    for key in [k for k in os.environ if k.startswith(("SCOPE3_", "JUPYTERHUB_"))]:
        monkeypatch.delenv(key)
    yield


def run_analyst_notebook(creds: TenantFixture, data_dir: Path, out: Path,
                         monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCOPE3_TENANT_DATABASE_URL", creds.database_url)
    monkeypatch.setenv("SCOPE3_TENANT", creds.slug)
    monkeypatch.setenv("SCOPE3_DATA_DIR", str(data_dir))
    papermill.execute_notebook(str(ANALYST), str(out), kernel_name="python3", cwd=str(ANALYST.parent),
                               progress_bar=False, execution_timeout=600)
    return outputs(out)


def test_analyst_notebook_shows_hotspots_model_and_estimates(two_runs: TwoRuns, data_dir: Path, tmp_path: Path,
                                                             hub_environment: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shown = run_analyst_notebook(two_runs.creds, data_dir, tmp_path / "ml.ipynb", monkeypatch)
    assert re.search(r"\d+ hotspot suppliers, [\d,.]+ t CO2e above their sector medians", shown), shown
    assert re.search(r"intensity \d+\.\d× the sector median \(NAICS \d{6}\), \d+% of category \d+", shown)
    nb = nbformat.read(str(tmp_path / "ml.ipynb"), as_version=4)
    assert any("**Estimates are not supplier data.**" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Model **v1** (trained" in shown and "It beats the baseline, so estimates use it." in shown
    assert "eeio_mape_pct" in shown  # the registry's versions table
    non_reporting = int((~two_runs.frame["reports"]).sum())
    assert f"of {non_reporting:,} suppliers; model version(s) v1)" in shown
    assert "confidence" in shown and "model_version" in shown  # the stored estimates table


def test_analyst_notebook_without_a_reachable_model_registry(two_runs: TwoRuns, tmp_path: Path,
                                                             hub_environment: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The hub gives analysts' servers no data directory: the model's metrics are not there to show, the
    # notebook says so and still shows the hotspots and the estimates stored in the inventory.
    empty = tmp_path / "no-data-dir"
    shown = run_analyst_notebook(two_runs.creds, empty, tmp_path / "ml.ipynb", monkeypatch)
    assert "is not reachable from here (an analyst's server does not see it)" in shown
    assert "No trained model" not in shown  # there is one: the notebook must not say otherwise
    assert "× the sector median" in shown
    assert "is estimated by the ML model" in shown and "model version(s) v1" in shown
