"""Spend-based estimates of supplier emission intensity (kg CO2e per 2022 USD) where suppliers do not report.

The estimator starts from the EEIO sector factor (EPA USEEIO, the spend-based method of the GHG Protocol
Scope 3 guidance) and learns, from the tenant's suppliers that disclose their own intensity, how much a
supplier departs from its sector: on a log scale, ``log(intensity) - log(EEIO factor)`` is predicted from
the sector's factor, country, grid region, spend (a size proxy) and GHG Protocol category by a gradient
boosted model with Huber loss (robust to the few suppliers whose disclosures are far off).

How sure it is, per estimate: split-conformal intervals built on out-of-fold residuals of a cross-validation
grouped by supplier, normalised by a difficulty that grows when few reporting suppliers share the sector
(``sigma = 1 + 1/sqrt(1 + peers)``). The 90 % interval is ``exp(log estimate +/- q * sigma)``; the confidence
score is ``exp(-q * sigma)``, the ratio of the estimate to the interval's upper bound (1 = exact; 0.5 = the
upper bound is twice the estimate). Data quality (GHG Protocol pedigree) is 4 when the sector has at least
three reporting peers and the confidence is at least 0.5, else 5: an estimate is never scored like
supplier data (2).

Refusals fall back to EEIO: with fewer than :data:`MIN_REPORTING` reporting suppliers :func:`train` raises
:class:`~scope3lib.errors.TooFewReportingSuppliers` and :func:`eeio_estimates` gives the spend-based factors;
a NAICS code without an EEIO factor raises :class:`~scope3lib.errors.UnknownSector`.

Stored estimates (:func:`write_estimates`) update the supplier's open-period spend-based entries in place:
``data_source='ml'``, ``factor_source='ml-estimator'``, ``factor_version`` = the model version, ``factor_value``
= the estimate, ``data_quality`` 4-5, and the description ends with the 90 % interval, the confidence and the
EEIO factor it replaced. The ledger trigger logs every change; an entry that already holds the estimate is
not rewritten, so predicting again with the same model changes (and logs) nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from ..accounting import entries, inventory
from ..categories import DataSource, Method
from ..config import Settings, TenantSettings
from ..errors import ConfigurationError, EstimatorError, InvalidArgument, ModelNotFound
from ..factors import lookup
from ..tenancy import connected_tenant
from . import registry as models_registry
from .estimator import (
    EEIO_SOURCE,
    FACTOR_SOURCE,
    MIN_REPORTING,
    Estimator,
    eeio_estimates,
    evaluate,
    features,
    train,
)
from .suppliers import tenant_suppliers

__all__ = ["EEIO_SOURCE", "FACTOR_SOURCE", "MIN_REPORTING", "Estimator", "eeio_estimates", "evaluate", "features",
           "tenant_suppliers", "train"]

def estimate_note(pred: pd.DataFrame) -> pd.Series:
    """The words stored with each estimate: value, 90 % interval, confidence, the EEIO factor it replaces."""
    cols = ["estimate", "lower", "upper", "confidence", "naics_code", "eeio_factor", "model_version"]
    return pd.Series([
        f"estimate {est:.4g} kg CO2e/USD (90% interval {lo:.4g}-{hi:.4g}, confidence {conf:.2f}); "
        f"EEIO {EEIO_SOURCE} {code} = {base:.4g}; model {version}"
        for est, lo, hi, conf, code, base, version in pred[cols].itertuples(index=False)
    ], index=pred.index, dtype=object)


def write_estimates(engine: Engine, predictions: pd.DataFrame) -> int:
    """Apply estimates (rows of :meth:`Estimator.predict` with ``supplier_id``) to the suppliers' open-period
    spend-based entries; returns the number of entries changed. Entries in closed periods, and entries that
    already hold the same estimate (a re-run), are left alone, so a re-run changes nothing and logs nothing."""
    pred = predictions[predictions["basis"] == "ml"]
    if pred.empty:
        return 0
    rows = pred.assign(note=estimate_note(pred))
    with engine.begin() as conn:
        return entries.apply_estimates(conn, rows, source=FACTOR_SOURCE, replaceable=[EEIO_SOURCE, FACTOR_SOURCE])


def estimated_share(engine: Engine | Connection) -> pd.DataFrame:
    """For dashboards: per category, kg CO2e in total, from ML estimates, and their share (0-1)."""
    return inventory.source_shares(entries.read(engine)).drop(index=0)[["kg_co2e", "ml_kg_co2e", "ml_share"]]


# --- The tenant's models: train, predict, report -------------------------------------------------------


@dataclass
class PredictionOutcome:
    """What :func:`predict_tenant` did: ``basis`` is ``"ml"`` (estimates written) or ``"eeio"`` (fallback:
    nothing written, the entries keep their factors, ``reason`` says why)."""

    basis: str
    model_version: str | None
    reason: str | None
    predictions: pd.DataFrame
    entries_updated: int
    unknown_sectors: list[str]


def train_tenant(engine: Engine, data_dir: Path, slug: str, *, seed: int = 0) -> Estimator:
    """Train on the tenant's reporting suppliers and store the model as the next version (engine: the
    tenant's own). Raises :class:`TooFewReportingSuppliers` / :class:`UnknownSector`; nothing is stored then."""
    eeio = lookup.sector_factors(engine)
    sup = tenant_suppliers(engine)
    reporting = sup[sup["reports"]]
    known = reporting["naics_code"].astype(str).isin(eeio.index)
    if not known.all() and known.sum() >= MIN_REPORTING:
        reporting = reporting[known]  # a reporter without an EEIO sector cannot teach a departure from it
    est = train(reporting, seed=seed, eeio=eeio)
    models_registry.save(data_dir, slug, est)
    return est


def predict_tenant(engine: Engine, data_dir: Path, slug: str, *, version: str | None = None,
                   write: bool = True) -> PredictionOutcome:
    """Estimate every non-reporting supplier with model ``version`` (latest when None) and, with ``write``,
    store the estimates on its open-period spend-based entries. Falls back to EEIO (writing nothing) when
    there is no model or the model did not beat EEIO out of fold; suppliers without an EEIO sector are
    listed in ``unknown_sectors`` and left alone. A ``version`` that is not stored raises
    :class:`~scope3lib.errors.ModelNotFound`."""
    eeio = lookup.sector_factors(engine)
    sup = tenant_suppliers(engine)
    targets = sup[~sup["reports"]]
    known = targets["naics_code"].astype(str).isin(eeio.index)
    unknown = sorted(set(targets.loc[~known, "naics_code"].astype(str)))
    targets = targets[known]
    reason: str | None = None
    try:
        est = models_registry.load(data_dir, slug, version, eeio=eeio)
        if not est.metrics.get("beats_baseline"):
            reason = (f"model {est.version} did not beat the EEIO baseline out of fold (MAPE "
                      f"{est.metrics['mape_pct']:.1f}% vs {est.metrics['eeio_mape_pct']:.1f}%)")
    except ModelNotFound as exc:
        if version is not None:  # a model asked for by name that is not there is a mistake, not a fallback
            raise
        reason = str(exc)
    if reason is not None:
        fallback = eeio_estimates(targets, reason, eeio).assign(supplier_id=targets["supplier_id"].to_numpy())
        return PredictionOutcome("eeio", None, reason, fallback, 0, unknown)
    pred = est.predict(targets).assign(supplier_id=targets["supplier_id"].to_numpy())
    updated = write_estimates(engine, pred) if write else 0
    return PredictionOutcome("ml", est.version, None, pred, updated, unknown)


def report_tenant(data_dir: Path, slug: str, version: str | None = None) -> pd.DataFrame:
    """The model's out-of-fold metrics against the EEIO baseline: rows ``model`` and ``eeio``, columns
    mape_pct, r2_log, coverage (of the 90 % interval), suppliers, and the model version."""
    m = models_registry.load(data_dir, slug, version).metrics
    est_version = version or models_registry.versions(data_dir, slug)["version"].iloc[-1]
    return pd.DataFrame({
        "mape_pct": [m["mape_pct"], m["eeio_mape_pct"]], "r2_log": [m["r2_log"], m["eeio_r2_log"]],
        "coverage": [m["coverage"], float("nan")], "suppliers": [int(m["suppliers"])] * 2,
        "model_version": [est_version] * 2,
    }, index=pd.Index(["model", "eeio"], name="basis"))


# --- For the analyst notebook and the nightly report ---------------------------------------------------


def tenant_models(engine: Engine | Connection) -> tuple[Path, str]:
    """Where the connected tenant keeps its models: ``(data_dir, slug)`` for :mod:`scope3lib.ml.registry`.

    The slug is read from the database (the tenant of the connected role), so a notebook reaches its own
    tenant's registry folder only; the data directory is ``SCOPE3_DATA_DIR`` (:class:`~scope3lib.config.Settings`),
    which the report runner gives report kernels next to the tenant's database URL. ``SCOPE3_TENANT``, when
    set, must name the same tenant.
    """
    slug = connected_tenant(engine)
    if slug is None:
        raise ConfigurationError("this connection is not a tenant's role: connect with scope3lib.connect() "
                                 "(SCOPE3_TENANT_DATABASE_URL) to reach a tenant's models")
    named = TenantSettings().tenant
    if named and named != slug:
        raise ConfigurationError(f"SCOPE3_TENANT is {named!r} but the database role belongs to tenant {slug!r}")
    return Settings().data_dir, str(slug)


#: How notebooks and reports show the columns of these tables (``DataFrame.style.format``): intensities in
#: kg CO2e per USD to 4 significant digits, kg CO2e without decimals, shares as percentages.
DISPLAY_FORMATS: dict[str, str] = {
    "estimate": "{:.4g}", "lower": "{:.4g}", "upper": "{:.4g}", "eeio_factor": "{:.4g}", "intensity": "{:.4g}",
    "sector_median": "{:.4g}", "confidence": "{:.2f}", "kg_co2e": "{:,.0f}", "ml_kg_co2e": "{:,.0f}",
    "kg_at_stake": "{:,.0f}", "ml_share": "{:.1%}", "category_share": "{:.1%}",
}

_NUM = r"[0-9.]+(?:e[+-]?[0-9]+)?"
# The words estimate_note() stores; read back by stored_estimates().
_NOTE = re.compile(
    rf" \| ML estimate (?P<estimate>{_NUM}) kg CO2e/USD \(90% interval (?P<lower>{_NUM})-(?P<upper>{_NUM}), "
    rf"confidence (?P<confidence>{_NUM})\); EEIO \S+ (?P<naics_code>\S+) = (?P<eeio_factor>{_NUM}); "
    r"model (?P<model_version>\S+)$"
)
_STORED_COLUMNS = ["supplier_id", "supplier", "naics_code", "model_version", "estimate", "lower", "upper",
                   "confidence", "eeio_factor", "data_quality", "entries", "kg_co2e"]


def stored_estimates(engine: Engine | Connection) -> pd.DataFrame:
    """The ML estimates in the inventory, read back from the entries (data source ``ml``): one row per
    supplier and model version, largest emissions first.

    Columns: supplier_id, supplier, naics_code, model_version, estimate, lower, upper (the 90 % interval;
    kg CO2e per 2022 USD, 4 significant digits as stored), confidence (0-1), eeio_factor (the factor the
    estimate replaced), data_quality (worst of the entries, 4-5), entries, kg_co2e.
    """
    e = entries.read(engine)
    ml = e[e["data_source"] == DataSource.ML.value]
    if ml.empty:
        return pd.DataFrame(columns=_STORED_COLUMNS)
    parsed = ml["description"].fillna("").str.extract(_NOTE)
    numbers = ["estimate", "lower", "upper", "confidence", "eeio_factor"]
    parsed[numbers] = parsed[numbers].astype(float)
    df = pd.concat([ml[["supplier_id", "supplier", "kg_co2e", "data_quality", "id"]], parsed], axis=1)
    df["model_version"] = df["model_version"].fillna(ml["factor_version"])
    out = (df.groupby(["supplier_id", "supplier", "model_version"], dropna=False)
           .agg(naics_code=("naics_code", "first"), estimate=("estimate", "first"), lower=("lower", "first"),
                upper=("upper", "first"), confidence=("confidence", "first"), eeio_factor=("eeio_factor", "first"),
                data_quality=("data_quality", "max"), entries=("id", "count"), kg_co2e=("kg_co2e", "sum"))
           .reset_index().sort_values("kg_co2e", ascending=False, ignore_index=True))
    return out[_STORED_COLUMNS]


@dataclass(frozen=True)
class EstimatedInventory:
    """How much of the inventory rests on estimates (kg CO2e; shares 0-1 of the total)."""

    kg_co2e: float
    ml_kg_co2e: float
    eeio_kg_co2e: float  # spend-based entries still on the EEIO sector factor
    ml_entries: int
    ml_suppliers: int
    model_versions: tuple[str, ...]

    @property
    def ml_share(self) -> float:
        return self.ml_kg_co2e / self.kg_co2e if self.kg_co2e else 0.0

    @property
    def eeio_share(self) -> float:
        return self.eeio_kg_co2e / self.kg_co2e if self.kg_co2e else 0.0

    def sentence(self) -> str:
        """The split in words, for notebooks and reports."""
        eeio = f"{self.eeio_share:.1%} rests on EEIO spend-based sector factors"
        if not self.ml_entries:
            return (f"None of the inventory ({self.kg_co2e / 1000:,.1f} t CO2e) is estimated by the ML model; "
                    f"{eeio}, which are not supplier data either.")
        return (f"{self.ml_share:.1%} of the inventory ({self.ml_kg_co2e / 1000:,.1f} of "
                f"{self.kg_co2e / 1000:,.1f} t CO2e) is estimated by the ML model ({self.ml_entries:,} entries of "
                f"{self.ml_suppliers:,} suppliers; model version(s) {', '.join(self.model_versions)}); a further "
                f"{eeio}. Neither is supplier data.")


def estimated_inventory(engine: Engine | Connection) -> EstimatedInventory:
    """The whole inventory's split between ML estimates, EEIO spend-based factors and the rest."""
    e = entries.read(engine)
    ml = e["data_source"] == DataSource.ML.value
    eeio = ~ml & (e["method"] == Method.SPEND_BASED.value) & (e["factor_source"] == EEIO_SOURCE)
    return EstimatedInventory(
        kg_co2e=float(e["kg_co2e"].sum()), ml_kg_co2e=float(e.loc[ml, "kg_co2e"].sum()),
        eeio_kg_co2e=float(e.loc[eeio, "kg_co2e"].sum()), ml_entries=int(ml.sum()),
        ml_suppliers=int(e.loc[ml, "supplier_id"].nunique()),
        model_versions=tuple(sorted(e.loc[ml, "factor_version"].dropna().astype(str).unique())),
    )


def describe_model(data_dir: Path, slug: str, version: str | None = None) -> str:
    """The model in words (Markdown): version, when and on how many reporting suppliers it was trained, its
    out-of-fold MAPE and R² against the EEIO baseline, interval coverage, and whether estimates use it; or
    that there is none and what happens instead."""
    folder = models_registry.registry_dir(data_dir, slug)
    try:
        table = models_registry.versions(data_dir, slug)
        reachable = folder.parent.is_dir()  # the tenant's folder of this data directory
    except PermissionError:
        table, reachable = pd.DataFrame(), False
    if not reachable and version is None:
        return (f"The model registry (`{folder}`) is not reachable from here (an analyst's server does not see "
                "it): the nightly estimates report shows the model and its metrics against EEIO. ML estimates "
                "already in the inventory each name the model version that made them.")
    if table.empty:
        return (f"No trained model for tenant `{slug}` in `{models_registry.registry_dir(data_dir, slug)}`. "
                "Without one, suppliers without their own data stay on EEIO spend-based factors until the nightly "
                f"estimates report (or `scope3 ml train {slug}`) trains one; ML estimates already in the inventory "
                "each name the model version that made them, and that report shows the model's metrics.")
    rows = table if version is None else table[table["version"] == version]
    if rows.empty:
        raise ModelNotFound(f"tenant {slug!r} has no model {version!r} (stored: {', '.join(table['version'])})")
    m = rows.iloc[-1]
    used = ("It beats the baseline, so estimates use it." if m["beats_baseline"]
            else "It does **not** beat the baseline, so estimates fall back to the EEIO factors.")
    return (f"Model **{m['version']}** (trained {m['created_at']}, {int(m['suppliers'])} reporting suppliers, "
            f"data fingerprint `{m['fingerprint']}`). Out of fold, grouped by supplier: MAPE "
            f"**{m['mape_pct']:.1f}%** against **{m['eeio_mape_pct']:.1f}%** for the EEIO factor alone, R² of log "
            f"intensity **{m['r2_log']:.3f}** against **{m['eeio_r2_log']:.3f}**; its 90% intervals covered "
            f"{m['coverage']:.0%} of held-out reporting suppliers. {used}")


@dataclass
class BatchOutcome:
    """What :func:`batch_estimates` did: the model it trained (or why it could not), the prediction, the
    model's metrics against EEIO (``None`` without a model) and the inventory's estimated share afterwards."""

    trained_version: str | None
    training_refused: str | None
    prediction: PredictionOutcome
    metrics: pd.DataFrame | None
    inventory: EstimatedInventory

    def summary(self) -> str:
        """What the run did, in Markdown, one line per step."""
        p = self.prediction
        lines = []
        if self.trained_version is not None:
            lines.append(f"- Trained model **{self.trained_version}** on the suppliers that report their own data.")
        elif self.training_refused is not None:
            lines.append(f"- Training refused: {self.training_refused}.")
        else:
            lines.append("- No retraining asked for: used the stored model.")
        if p.basis == "ml":
            done = (f"{p.entries_updated:,} entries updated" if p.entries_updated
                    else "no entry changed (they already hold these estimates)")
            lines.append(f"- Estimated **{len(p.predictions):,} suppliers** without supplier-specific data with "
                         f"model **{p.model_version}**: {done}.")
        else:
            # With training refused and no stored model, the prediction's own reason ("no trained model; run
            # `scope3 ml train`") would only repeat the refusal with worse advice.
            reason = "no model could be trained (above)" if self.training_refused and self.metrics is None else p.reason
            lines.append(f"- **Fell back to EEIO**: {reason}. Nothing written: {len(p.predictions):,} suppliers "
                         "without supplier-specific data keep their EEIO spend-based factors.")
        if p.unknown_sectors:
            lines.append(f"- Suppliers with NAICS code(s) {', '.join(p.unknown_sectors)} have no EEIO factor and "
                         "were not estimated.")
        lines.append(f"- {self.inventory.sentence()}")
        return "\n".join(lines)


def batch_estimates(engine: Engine, data_dir: Path, slug: str, *, retrain: bool = False, seed: int = 0,
                    version: str | None = None) -> BatchOutcome:
    """The nightly batch: train when ``retrain`` or when the tenant has no model yet, then estimate every
    supplier without supplier-specific data and store the estimates (:func:`predict_tenant`); tenant engine.

    A refused training (too few reporting suppliers, sectors without an EEIO factor) is not an error: the
    stored model, if any, or the EEIO factors stay in force and the outcome says why. Raises
    :class:`~scope3lib.errors.ModelNotFound` for a ``version`` that is not stored and
    :class:`~scope3lib.errors.InvalidArgument` for ``retrain`` with a ``version`` (training makes a new one).
    """
    if retrain and version:
        raise InvalidArgument(f"retrain trains a new model version, so it cannot also predict with {version!r}: "
                              "leave the version empty (the new model is used) or do not retrain")
    trained: str | None = None
    refused: str | None = None
    if retrain or models_registry.versions(data_dir, slug).empty:
        try:
            trained = train_tenant(engine, data_dir, slug, seed=seed).version
        except EstimatorError as exc:
            refused = str(exc)
    prediction = predict_tenant(engine, data_dir, slug, version=version)
    has_model = not models_registry.versions(data_dir, slug).empty
    metrics = report_tenant(data_dir, slug, version) if has_model else None
    return BatchOutcome(trained, refused, prediction, metrics, estimated_inventory(engine))
