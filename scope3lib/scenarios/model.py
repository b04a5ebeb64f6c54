"""Reduction scenarios: levers applied to the base-year inventory, year by year, with their costs.

A :class:`Scenario` names a base year, a target year, compound business growth, a discount rate and
a list of levers. :func:`project` applies them to a base-year inventory (:func:`baseline`, one row
per category, supplier and data type) and returns a :class:`ScenarioResult`: emissions by category
and year under business-as-usual (BAU) and under the scenario, the reduction against BAU and against
the base year, and per lever the tonnes abated, implementation cost, annual saving, simple payback,
NPV and cost per tonne abated. :func:`cost_curve` orders the levers into a marginal abatement cost
curve; :func:`target_pathway` is the comparison line.

Conventions, so that every figure can be checked by hand:

* Emissions in kg CO2e (tables also give t CO2e); money in US dollars, undiscounted unless named NPV.
* BAU in year ``y`` is the base-year emissions times ``(1 + growth) ** (y - base_year)``.
* A lever removes a constant *fraction* of the emissions of the rows it applies to, from its
  ``start_year`` to the target year. Levers apply in the order given, each to what the previous ones
  left, so their abatements add up to BAU minus scenario without double counting.
* Cash flows: ``implementation_cost`` once in ``start_year``; ``annual_saving`` (plus what the lever
  itself saves or costs: avoided spend, renewable premium) every year from ``start_year`` to the
  target year, at base-year volume. NPV discounts year ``y`` by ``(1 + discount_rate) ** (y - base_year)``.
* Simple payback = implementation cost / net annual saving (``inf`` when the lever never pays back).
* Cost per tonne abated = -NPV / tonnes abated over the horizon (negative: the lever saves money).

Everything is deterministic: the same scenario and inventory give the same result (see
:attr:`ScenarioResult.fingerprint`). Scenarios are stored per tenant in the ``scenarios`` table
(migration 0006, row-level security) with :func:`save`, :func:`load`, :func:`list_scenarios`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..accounting import inventory
from ..categories import CATEGORIES, Method, category_label
from ..errors import InvalidLever, ScenarioError
from ..factors import lookup

T_PER_KG = 1e-3

# SBTi's minimum ambition for a 1.5°C-aligned near-term target by absolute contraction: a 4.2% linear
# annual reduction of base-year emissions. Source: Science Based Targets initiative, *Corporate Net-Zero
# Standard* (v1.2, 2024), near-term targets, and *SBTi Corporate Near-Term Criteria* (v5.x), absolute
# contraction approach for 1.5°C.
SBTI_1P5C_ANNUAL_RATE = 0.042

_SHARE = Field(ge=0.0, le=1.0, description="fraction 0-1 (0.25 = 25%)")


# --- levers --------------------------------------------------------------------------------------


class _Lever(BaseModel):
    """What every lever has: when it starts and what it costs or saves (US dollars)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str | None = Field(None, description="name shown in tables and on the cost curve")
    start_year: int = Field(description="first year the lever acts (and its implementation cost is paid)")
    implementation_cost: float = Field(0.0, ge=0.0, description="one-off cost (capex), USD, in start_year")
    annual_saving: float = Field(0.0, description="net saving per year from start_year, USD; negative = cost")

    def target(self) -> str:
        return ""

    def title(self) -> str:
        kind = str(getattr(self, "kind", type(self).__name__))
        return self.label or (f"{kind}: {self.target()}" if self.target() else kind)

    def scope(self, base: pd.DataFrame) -> np.ndarray:
        """Which rows of the baseline the lever applies to (bool array)."""
        mask = np.ones(len(base), dtype=bool)
        supplier = getattr(self, "supplier", None)
        category = getattr(self, "category", None)
        if supplier is not None:
            mask &= (base["supplier"] == supplier).to_numpy()
        if category is not None:
            mask &= (base["category"] == category).to_numpy()
        return mask

    def fraction(self, base: pd.DataFrame, ctx: _Context) -> np.ndarray:
        """Fraction (0-1) of each baseline row's emissions the lever removes once active."""
        raise NotImplementedError

    def lever_saving(self, base: pd.DataFrame, ctx: _Context) -> float:
        """Annual USD the lever itself saves (positive) or costs (negative), on top of ``annual_saving``."""
        return 0.0


def _one_of(lever: _Lever, names: tuple[str, str], need_one: bool = True) -> None:
    given = [n for n in names if getattr(lever, n) is not None]
    if len(given) > 1 or (need_one and not given):
        raise ValueError(f"give exactly one of {' or '.join(names)}")


class RenewableElectricity(_Lever):
    """A supplier, or every supplier in a grid region, switches ``share`` of its electricity to renewables.

    ``annual_kwh`` is the electricity behind the tenant's purchases from them (kWh per year at base-year
    volume). Abated kg per year = annual_kwh × share × grid factor (location-based, kg CO2e/kWh, of the
    region in the base year, :func:`scope3lib.factors.lookup.grid_factor`), capped at their emissions;
    the premium costs annual_kwh × share × premium_per_kwh USD per year.
    """

    kind: Literal["renewable_electricity"] = "renewable_electricity"
    supplier: str | None = None
    region: str | None = None
    annual_kwh: float = Field(gt=0.0, description="kWh per year")
    share: float = _SHARE
    premium_per_kwh: float = Field(0.0, ge=0.0, description="USD per kWh")

    @model_validator(mode="after")
    def _check(self) -> RenewableElectricity:
        _one_of(self, ("supplier", "region"))
        return self

    def target(self) -> str:
        return str(self.supplier or self.region)

    def scope(self, base: pd.DataFrame) -> np.ndarray:
        if self.region is not None:
            return (base["region"].fillna("").str.upper() == self.region.upper()).to_numpy()
        return super().scope(base)

    def fraction(self, base: pd.DataFrame, ctx: _Context) -> np.ndarray:
        mask = self.scope(base)
        regions = base.loc[mask, "region"].dropna().str.upper().unique()
        if len(regions) != 1:
            raise ValueError(f"{self.target()!r} has no single grid region in the supplier table "
                             f"(found {sorted(regions) or 'none'}); set the supplier's region")
        gf = lookup.grid_factor(None, str(regions[0]), ctx.base_year, table=ctx.factor_table)
        if gf is None:
            raise ValueError(f"no grid factor for region {regions[0]!r} in or before {ctx.base_year}")
        kg = float(base.loc[mask, "kg_co2e"].sum())
        frac = min(1.0, self.annual_kwh * self.share * gf.value / kg) if kg > 0 else 0.0
        return np.where(mask, frac, 0.0)

    def lever_saving(self, base: pd.DataFrame, ctx: _Context) -> float:
        return -self.annual_kwh * self.share * self.premium_per_kwh


class _ScopedReduction(_Lever):
    """A lever that cuts the emissions of a category and/or a supplier by ``reduction``."""

    category: int | None = None
    supplier: str | None = None
    reduction: float = _SHARE

    @model_validator(mode="after")
    def _check_scope(self) -> _ScopedReduction:
        if self.category is None and self.supplier is None:
            raise ValueError("give a category, a supplier or both")
        return self

    def target(self) -> str:
        return " / ".join(str(x) for x in (self.category, self.supplier) if x is not None)

    def fraction(self, base: pd.DataFrame, ctx: _Context) -> np.ndarray:
        return np.where(self.scope(base), self.reduction, 0.0)


class EnergyEfficiency(_ScopedReduction):
    """Efficiency measures cut the emissions of a category and/or a supplier by ``reduction``.

    Capex is ``implementation_cost``; the annual opex saving is ``annual_saving``.
    """

    kind: Literal["energy_efficiency"] = "energy_efficiency"


class SupplierSwitch(_Lever):
    """Move ``share`` of the spend with ``supplier`` to a lower-intensity one: a named supplier (its
    base-year kg CO2e per USD) or a NAICS sector (its EPA USEEIO factor, kg CO2e per 2022 USD).

    Removed fraction = share × (1 - new intensity / current intensity), the current intensity being the
    supplier's base-year kg CO2e per USD of spend.
    """

    kind: Literal["supplier_switch"] = "supplier_switch"
    supplier: str
    to_supplier: str | None = None
    to_naics: str | None = Field(None, pattern=r"^\d{6}$")
    share: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> SupplierSwitch:
        _one_of(self, ("to_supplier", "to_naics"))
        if self.to_supplier == self.supplier:
            raise ValueError("to_supplier is the supplier itself")
        return self

    def target(self) -> str:
        return f"{self.supplier} -> {self.to_supplier or 'NAICS ' + str(self.to_naics)}"

    def fraction(self, base: pd.DataFrame, ctx: _Context) -> np.ndarray:
        mask = self.scope(base)
        current = _intensity(base, mask, self.supplier)
        if self.to_supplier is not None:
            other = (base["supplier"] == self.to_supplier).to_numpy()
            if not other.any():
                raise ValueError(f"no supplier named {self.to_supplier!r} in the {ctx.base_year} inventory")
            new = _intensity(base, other, self.to_supplier)
        else:
            naics = str(self.to_naics)
            if naics not in ctx.sector_factors.index:
                raise ValueError(f"no EEIO factor for NAICS {naics!r} (see `scope3 factors list epa-useeio`)")
            new = float(ctx.sector_factors[naics])
        if new >= current:
            raise ValueError(f"the new intensity ({new:.4g} kg CO2e/USD) is not lower than {self.supplier!r}'s "
                             f"({current:.4g}); choose a lower-intensity supplier or sector")
        return np.where(mask, self.share * (1.0 - new / current), 0.0)


def _intensity(base: pd.DataFrame, mask: np.ndarray, name: str) -> float:
    spend = float(base.loc[mask, "spend_usd"].sum())
    if not spend > 0:
        raise ValueError(f"supplier {name!r} has no spend in the base year, so no kg CO2e per USD")
    return float(base.loc[mask, "kg_co2e"].sum()) / spend


class TransportModeShift(_Lever):
    """Shift ``share`` of the tonne.km of category 4 or 9 (optionally one carrier) from road to rail or sea.

    Removed fraction = share × (1 - to_factor / road_factor), both in kg CO2e per tonne.km from the same
    factor set (e.g. DESNZ *freighting goods*: HGV average laden vs rail freight or a cargo ship), on the
    assumption that the category's emissions are road freight.
    """

    kind: Literal["transport_mode_shift"] = "transport_mode_shift"
    category: Literal[4, 9]
    supplier: str | None = None
    to_mode: Literal["rail", "sea"]
    share: float = _SHARE
    road_factor: float = Field(gt=0.0, description="kg CO2e per tonne.km by road")
    to_factor: float = Field(gt=0.0, description="kg CO2e per tonne.km by the new mode")

    @model_validator(mode="after")
    def _check(self) -> TransportModeShift:
        if self.to_factor >= self.road_factor:
            raise ValueError(f"{self.to_mode} factor {self.to_factor} is not below the road factor {self.road_factor}")
        return self

    def target(self) -> str:
        return f"category {self.category} road -> {self.to_mode}"

    def fraction(self, base: pd.DataFrame, ctx: _Context) -> np.ndarray:
        return np.where(self.scope(base), self.share * (1.0 - self.to_factor / self.road_factor), 0.0)


class SpendReduction(_ScopedReduction):
    """Buy less: cut the spend (and so the emissions) of a category and/or supplier by ``reduction``.

    The avoided spend (reduction × base-year USD) counts as an annual saving.
    """

    kind: Literal["spend_reduction"] = "spend_reduction"

    def lever_saving(self, base: pd.DataFrame, ctx: _Context) -> float:
        return self.reduction * float(base.loc[self.scope(base), "spend_usd"].fillna(0).sum())


class SupplierEngagement(_Lever):
    """``share`` of the suppliers still estimated from spend (optionally in one category) move to
    supplier-specific data with a ``reduction`` of their emissions.

    Applied as an expected value to every non-supplier-specific row in scope: removed fraction =
    share × reduction. Rows already supplier-specific are untouched.
    """

    kind: Literal["supplier_engagement"] = "supplier_engagement"
    category: int | None = None
    share: float = _SHARE
    reduction: float = _SHARE

    def target(self) -> str:
        return f"category {self.category}" if self.category is not None else "all categories"

    def scope(self, base: pd.DataFrame) -> np.ndarray:
        return super().scope(base) & ~base["specific"].to_numpy(dtype=bool)

    def fraction(self, base: pd.DataFrame, ctx: _Context) -> np.ndarray:
        return np.where(self.scope(base), self.share * self.reduction, 0.0)


Lever = Annotated[
    RenewableElectricity | EnergyEfficiency | SupplierSwitch | TransportModeShift | SpendReduction
    | SupplierEngagement,
    Field(discriminator="kind"),
]
LEVER_KINDS = ("renewable_electricity", "energy_efficiency", "supplier_switch", "transport_mode_shift",
               "spend_reduction", "supplier_engagement")


class Scenario(BaseModel):
    """A named set of levers over ``base_year`` .. ``target_year`` with compound ``growth`` per year
    (0.03 = 3%) and a ``discount_rate`` per year for NPV."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    base_year: int = Field(ge=1990, le=2100)
    target_year: int = Field(ge=1990, le=2100)
    growth: float = Field(0.0, gt=-1.0, le=1.0)
    discount_rate: float = Field(0.0, ge=0.0, le=1.0)
    levers: list[Lever] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.target_year <= self.base_year:
            raise ValueError(f"target year {self.target_year} is not after base year {self.base_year}")
        for i, lever in enumerate(self.levers, 1):
            if not self.base_year <= lever.start_year <= self.target_year:
                raise ValueError(f"lever {i} ({lever.title()}) starts in {lever.start_year}, outside "
                                 f"{self.base_year}-{self.target_year}")
            category = getattr(lever, "category", None)
            if category is not None and category not in CATEGORIES:
                raise ValueError(f"lever {i} ({lever.title()}): unknown category {category} (GHG Protocol 1-15)")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what :func:`parse` and the YAML file take)."""
        return self.model_dump(mode="json", exclude_defaults=False)


def parse(data: Mapping[str, Any]) -> Scenario:
    """A :class:`Scenario` from a dict (YAML/JSON), refusing invalid input with :class:`InvalidLever`."""
    try:
        return Scenario.model_validate(dict(data))
    except ValidationError as exc:
        reasons = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            reasons.append(f"{loc}: {msg}" if loc else msg)
        name = data.get("name", "?") if isinstance(data, Mapping) else "?"
        raise InvalidLever(f"scenario {name!r} refused: {'; '.join(reasons)}") from None


def from_yaml(path: str | Path) -> Scenario:
    """Read a scenario file (YAML with the fields of :class:`Scenario`)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ScenarioError(f"no scenario file {str(path)!r}") from None
    except yaml.YAMLError as exc:
        raise InvalidLever(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, Mapping):
        raise InvalidLever(f"{path}: expected a mapping with name, base_year, target_year, levers")
    return parse(data)


# --- baseline ------------------------------------------------------------------------------------

BASELINE_COLUMNS = ("category", "supplier", "naics_code", "region", "specific", "kg_co2e", "spend_usd")


def baseline_from_entries(entries: pd.DataFrame, suppliers: pd.DataFrame) -> pd.DataFrame:
    """Base-year inventory by category, supplier and data type (supplier-specific or not).

    ``entries`` is :func:`scope3lib.accounting.inventory.entries` for the base year; ``suppliers`` has ``name``,
    ``naics_code`` and ``region``. Columns: :data:`BASELINE_COLUMNS` (kg CO2e, USD).
    """
    df = entries.assign(specific=entries["method"] == Method.SUPPLIER_SPECIFIC.value,
                        supplier=entries["supplier"].fillna(""))
    g = (df.groupby(["category", "supplier", "specific"], as_index=False)
           .agg(kg_co2e=("kg_co2e", "sum"), spend_usd=("spend_usd", "sum")))
    attrs = suppliers[["name", "naics_code", "region"]].rename(columns={"name": "supplier"})
    g = g.merge(attrs, on="supplier", how="left")
    return g[list(BASELINE_COLUMNS)].sort_values(["category", "supplier", "specific"]).reset_index(drop=True)


def baseline(engine: Engine | Connection, base_year: int) -> pd.DataFrame:
    """The tenant's base-year inventory (entries whose period starts in ``base_year``), see
    :func:`baseline_from_entries`. Row-level security limits it to the engine's tenant."""
    e = inventory.entries(engine, f"{base_year}-01-01", f"{base_year}-12-31")
    if e.empty:
        raise ScenarioError(f"no emission entries in base year {base_year}: import that year's activity first "
                            "or choose a base year with an inventory")
    suppliers = db.read_frame(engine, "SELECT name, naics_code, region FROM suppliers")
    return baseline_from_entries(e, suppliers)


# --- projection ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    base_year: int
    sector_factors: pd.Series
    factor_table: pd.DataFrame | None = None  # grid factors come from here (None: the built-in set)


@dataclass
class ScenarioResult:
    """What :func:`project` returns. Tables are pandas DataFrames; emissions in kg and t CO2e, money in USD.

    * ``by_category``: year, category, label, bau_kg, scenario_kg, abated_kg.
    * ``totals``: per year bau_t, scenario_t, abated_t, vs_bau_pct, vs_base_t, vs_base_pct, pathway_t, gap_t
      (scenario minus the target pathway; <= 0 is on track).
    * ``levers``: per lever (in order) label, kind, start_year, abated_t (over the horizon), abated_target_t
      (in the target year), implementation_cost, annual_saving (net), payback_years, npv, cost_per_t.
    * ``summary``: the headline figures of the scenario as a dict.
    * ``fingerprint``: SHA-256 of the inputs (scenario and baseline); equal inputs give equal results.
    """

    scenario: Scenario
    by_category: pd.DataFrame
    totals: pd.DataFrame
    levers: pd.DataFrame
    summary: dict[str, Any]
    fingerprint: str


def target_pathway(base_kg: float, base_year: int, years: Sequence[int] | np.ndarray,
                   rate: float = SBTI_1P5C_ANNUAL_RATE) -> np.ndarray:
    """Linear reduction pathway: base_kg × max(0, 1 - rate × (year - base_year)), kg CO2e per year.

    The default rate is SBTi's 1.5°C-aligned 4.2% per year (:data:`SBTI_1P5C_ANNUAL_RATE`).
    """
    t = np.asarray(years, dtype=float) - base_year
    return base_kg * np.clip(1.0 - rate * t, 0.0, None)


def _npv(cash: np.ndarray, rate: float) -> np.ndarray:
    """NPV at the base year of cash flows ``cash[..., t]`` in year base_year + t."""
    return (cash / (1.0 + rate) ** np.arange(cash.shape[-1])).sum(axis=-1)


def project(scenario: Scenario, base: pd.DataFrame, factors: pd.Series | None = None,
            pathway_rate: float = SBTI_1P5C_ANNUAL_RATE, *, factor_table: pd.DataFrame | None = None
            ) -> ScenarioResult:
    """Apply ``scenario`` to the base-year inventory ``base`` (:func:`baseline`); pure, no database.

    ``factors`` are the sector factors for supplier switches to a NAICS sector and ``factor_table`` the
    factors grid lookups choose from (both by :mod:`scope3lib.factors.lookup`; default: the built-in set).
    Raises :class:`InvalidLever` for a lever that names what the inventory does not have.
    """
    if base.empty or not base["kg_co2e"].sum() > 0:
        raise ScenarioError(f"scenario {scenario.name!r}: the base-year ({scenario.base_year}) inventory is empty")
    base = base.reset_index(drop=True)
    ctx = _Context(scenario.base_year, lookup.sector_factors(None) if factors is None else factors,
                   factor_table)
    years = np.arange(scenario.base_year, scenario.target_year + 1)
    t = years - scenario.base_year
    growth = (1.0 + scenario.growth) ** t
    base_kg = base["kg_co2e"].to_numpy(dtype=float)
    bau = base_kg[:, None] * growth[None, :]
    remaining, levers = _apply_levers(scenario, base, ctx, years, bau)
    by_cat = _by_category(base, years, bau, remaining)
    base_total = float(base_kg.sum())
    totals = _totals(scenario, years, bau, remaining, base_total, pathway_rate)
    summary = _summary(scenario, totals, levers, base_total)
    return ScenarioResult(scenario, by_cat, totals, levers, summary, _fingerprint(scenario, base, ctx, pathway_rate))


def _apply_levers(scenario: Scenario, base: pd.DataFrame, ctx: _Context, years: np.ndarray,
                  bau: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """The emissions left (row × year) after the levers, applied in order, and one row of figures per lever.

    Each lever abates a fraction of what the levers before it left, from its start year on.
    """
    remaining = bau.copy()
    rows = []
    for i, lever in enumerate(scenario.levers, 1):
        _check_targets(i, lever, base, scenario.base_year)
        try:
            frac = lever.fraction(base, ctx)
            lever_saving = lever.lever_saving(base, ctx)
        except ValueError as exc:
            raise InvalidLever(f"scenario {scenario.name!r}, lever {i} ({lever.title()}): {exc}") from None
        active = (years >= lever.start_year).astype(float)
        abated = remaining * frac[:, None] * active[None, :]
        remaining = remaining - abated
        saving = lever.annual_saving + lever_saving
        cash = saving * active - lever.implementation_cost * (years == lever.start_year)
        npv = float(_npv(cash, scenario.discount_rate))
        abated_t = float(abated.sum()) * T_PER_KG
        rows.append({
            "label": lever.title(), "kind": lever.kind, "start_year": lever.start_year, "abated_t": abated_t,
            "abated_target_t": float(abated[:, -1].sum()) * T_PER_KG,
            "implementation_cost": lever.implementation_cost, "annual_saving": saving,
            "payback_years": _payback(lever.implementation_cost, saving), "npv": npv,
            "cost_per_t": 0.0 - npv / abated_t if abated_t > 0 else math.nan,
        })
    levers = pd.DataFrame(rows, columns=["label", "kind", "start_year", "abated_t", "abated_target_t",
                                         "implementation_cost", "annual_saving", "payback_years", "npv",
                                         "cost_per_t"])
    return remaining, levers


def _by_category(base: pd.DataFrame, years: np.ndarray, bau: np.ndarray, remaining: np.ndarray) -> pd.DataFrame:
    cats = base["category"].to_numpy()
    frame = pd.DataFrame({"category": np.repeat(cats, len(years)), "year": np.tile(years, len(cats)),
                          "bau_kg": bau.ravel(), "scenario_kg": remaining.ravel()})
    by_cat = frame.groupby(["year", "category"], as_index=False)[["bau_kg", "scenario_kg"]].sum()
    by_cat["abated_kg"] = by_cat["bau_kg"] - by_cat["scenario_kg"]
    by_cat.insert(2, "label", [category_label(int(c)) for c in by_cat["category"]])
    return by_cat


def _totals(scenario: Scenario, years: np.ndarray, bau: np.ndarray, remaining: np.ndarray, base_total: float,
            pathway_rate: float) -> pd.DataFrame:
    totals = pd.DataFrame({"year": years, "bau_t": bau.sum(axis=0) * T_PER_KG,
                           "scenario_t": remaining.sum(axis=0) * T_PER_KG})
    totals["abated_t"] = totals["bau_t"] - totals["scenario_t"]
    totals["vs_bau_pct"] = 100.0 * totals["abated_t"] / totals["bau_t"]
    totals["vs_base_t"] = base_total * T_PER_KG - totals["scenario_t"]
    totals["vs_base_pct"] = 100.0 * totals["vs_base_t"] / (base_total * T_PER_KG)
    totals["pathway_t"] = target_pathway(base_total, scenario.base_year, years, pathway_rate) * T_PER_KG
    totals["gap_t"] = totals["scenario_t"] - totals["pathway_t"]
    return totals


def _summary(scenario: Scenario, totals: pd.DataFrame, levers: pd.DataFrame, base_total: float) -> dict[str, Any]:
    """The headline figures: the target year's totals and the levers' costs and savings added up."""
    last = totals.iloc[-1]
    impl = float(levers["implementation_cost"].sum())
    saving = float(levers["annual_saving"].sum())
    npv_total = float(levers["npv"].sum())
    abated_total = float(levers["abated_t"].sum())
    return {
        "name": scenario.name, "base_year": scenario.base_year, "target_year": scenario.target_year,
        "base_t": base_total * T_PER_KG, "bau_target_t": float(last["bau_t"]),
        "scenario_target_t": float(last["scenario_t"]),
        "reduction_vs_bau_t": float(last["abated_t"]), "reduction_vs_bau_pct": float(last["vs_bau_pct"]),
        "reduction_vs_base_t": float(last["vs_base_t"]), "reduction_vs_base_pct": float(last["vs_base_pct"]),
        "pathway_target_t": float(last["pathway_t"]), "on_track": bool(last["gap_t"] <= 1e-9),
        "implementation_cost": impl, "annual_saving": saving, "payback_years": _payback(impl, saving),
        "npv": npv_total, "abated_t": abated_total,
        "cost_per_t": 0.0 - npv_total / abated_total if abated_total > 0 else math.nan,
    }


def _payback(cost: float, saving: float) -> float:
    """Years of net saving to recover the implementation cost; inf when the lever never pays back."""
    if saving <= 0:
        return 0.0 if cost <= 0 and saving == 0 else math.inf
    return max(cost, 0.0) / saving


def _check_targets(i: int, lever: _Lever, base: pd.DataFrame, base_year: int) -> None:
    """Refuse a lever naming a supplier, category or region the base-year inventory does not have."""
    where = f"lever {i} ({lever.title()})"
    supplier = getattr(lever, "supplier", None)
    if supplier is not None and not (base["supplier"] == supplier).any():
        raise InvalidLever(f"{where}: no supplier named {supplier!r} in the {base_year} inventory "
                           "(see scope3lib.accounting.inventory.by_supplier)")
    category = getattr(lever, "category", None)
    if category is not None and not (base["category"] == category).any():
        raise InvalidLever(f"{where}: category {category} has no emissions in {base_year}; choose one of "
                           f"{sorted(int(c) for c in base['category'].unique())}")
    if not lever.scope(base).any():
        raise InvalidLever(f"{where}: applies to no emissions of the {base_year} inventory")


def _fingerprint(scenario: Scenario, base: pd.DataFrame, ctx: _Context, rate: float) -> str:
    h = hashlib.sha256(json.dumps(scenario.to_dict(), sort_keys=True).encode())
    h.update(base.to_csv(index=False).encode())
    h.update(ctx.sector_factors.sort_index().to_csv().encode())
    h.update(repr(rate).encode())
    return h.hexdigest()


def run(engine: Engine | Connection, scenario: Scenario, pathway_rate: float = SBTI_1P5C_ANNUAL_RATE
        ) -> ScenarioResult:
    """Project ``scenario`` on the engine's tenant: its base-year inventory and the stored factors."""
    table = lookup.factor_table(engine)
    return project(scenario, baseline(engine, scenario.base_year), lookup.sector_factors(table=table), pathway_rate,
                   factor_table=table)


def cost_curve(result: ScenarioResult) -> pd.DataFrame:
    """Marginal abatement cost curve: levers cheapest per tonne first (money-saving ones, negative, first),
    levers without abatement last; with the cumulative abated tonnes where each bar starts and ends."""
    lv = result.levers.copy()
    lv["order"] = np.arange(len(lv))
    lv = lv.sort_values(["cost_per_t", "order"], na_position="last", kind="stable").drop(columns="order")
    lv["cum_end_t"] = lv["abated_t"].cumsum()
    lv["cum_start_t"] = lv["cum_end_t"] - lv["abated_t"]
    return lv.reset_index(drop=True)


# --- storage -------------------------------------------------------------------------------------


def save(engine: Engine, scenario: Scenario, replace: bool = False) -> int:
    """Store ``scenario`` for the engine's tenant (a tenant's read-write engine); returns its id.

    A scenario of the same name is refused unless ``replace``.
    """
    d = scenario.to_dict()
    params = {"n": scenario.name, "b": scenario.base_year, "t": scenario.target_year, "g": scenario.growth,
              "r": scenario.discount_rate, "l": json.dumps(d["levers"])}
    conflict = ("ON CONFLICT (tenant_id, name) DO UPDATE SET base_year = EXCLUDED.base_year, target_year = "
                "EXCLUDED.target_year, growth = EXCLUDED.growth, discount_rate = EXCLUDED.discount_rate, "
                "levers = EXCLUDED.levers, created_at = now()" if replace else "")
    with engine.begin() as conn:
        if conn.scalar(sa.text("SELECT tenant_of(current_user)")) is None:
            raise ScenarioError("saving a scenario needs a tenant's connection (scope3lib.db.connect()), "
                                "not the admin one")
        try:
            return int(conn.scalar(sa.text(
                "INSERT INTO scenarios (tenant_id, name, base_year, target_year, growth, discount_rate, levers) "
                "VALUES (tenant_of(current_user), :n, :b, :t, :g, :r, CAST(:l AS jsonb)) "
                f"{conflict} RETURNING id"), params))
        except sa.exc.IntegrityError:
            raise ScenarioError(f"a scenario named {scenario.name!r} already exists; choose another name or "
                                "save with replace=True (--replace)") from None
        except sa.exc.ProgrammingError as exc:
            raise ScenarioError(f"cannot save scenario {scenario.name!r}: this connection may not write "
                                f"(read-only role?): {str(exc.orig).splitlines()[0]}") from None


def load(engine: Engine | Connection, name: str) -> Scenario:
    """The engine's tenant's stored scenario ``name``."""
    sql = sa.text("SELECT name, base_year, target_year, growth, discount_rate, levers FROM scenarios "
                  "WHERE name = :n")
    if isinstance(engine, Connection):
        row = engine.execute(sql, {"n": name}).mappings().first()
    else:
        with engine.connect() as conn:
            row = conn.execute(sql, {"n": name}).mappings().first()
    if row is None:
        raise ScenarioError(f"no scenario named {name!r} (see `scope3 scenarios list SLUG`)")
    return parse(dict(row))


def list_scenarios(engine: Engine | Connection) -> pd.DataFrame:
    """The engine's tenant's stored scenarios: name, base_year, target_year, growth, discount_rate, levers
    (how many), created_at."""
    return db.read_frame(engine, "SELECT name, base_year, target_year, growth, discount_rate, "
                                 "jsonb_array_length(levers) AS levers, created_at FROM scenarios ORDER BY name")


def delete(engine: Engine, name: str) -> None:
    """Delete the engine's tenant's scenario ``name``."""
    with engine.begin() as conn:
        if conn.execute(sa.text("DELETE FROM scenarios WHERE name = :n"), {"n": name}).rowcount == 0:
            raise ScenarioError(f"no scenario named {name!r} (see `scope3 scenarios list SLUG`)")


# --- figures -------------------------------------------------------------------------------------

_LAYOUT = {"template": "plotly_white", "margin": {"l": 50, "r": 20, "t": 50, "b": 50}, "height": 380}


def comparison_figure(results: Sequence[ScenarioResult], title: str = "Scenarios against the target pathway"
                      ) -> go.Figure:
    """Total t CO2e per year: business-as-usual, each scenario, and the target pathway of the first."""
    fig = go.Figure(layout={**_LAYOUT, "title": title, "yaxis": {"title": "t CO2e"}, "xaxis": {"dtick": 1}})
    if not results:
        fig.add_annotation(text="no scenario to compare", showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")
        return fig
    first = results[0].totals
    fig.add_scatter(x=first["year"], y=first["bau_t"], name="business as usual", line={"color": "#7f7f7f"})
    for r in results:
        fig.add_scatter(x=r.totals["year"], y=r.totals["scenario_t"], name=r.scenario.name, mode="lines+markers")
    fig.add_scatter(x=first["year"], y=first["pathway_t"], name="target pathway (4.2%/yr, SBTi 1.5°C)",
                    line={"color": "#2ca02c", "dash": "dash"})
    return fig


def cost_curve_figure(result: ScenarioResult, title: str | None = None) -> go.Figure:
    """Marginal abatement cost curve: one bar per lever, width = t CO2e abated over the horizon, height =
    USD per t CO2e (below zero: the lever saves money)."""
    title = title or f"Marginal abatement cost curve: {result.scenario.name}"
    curve = cost_curve(result).dropna(subset=["cost_per_t"])
    fig = go.Figure(layout={**_LAYOUT, "title": title, "xaxis": {"title": "t CO2e abated (cumulative)"},
                            "yaxis": {"title": "USD per t CO2e"}, "showlegend": False})
    if curve.empty:
        fig.add_annotation(text="no lever abates anything", showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")
        return fig
    fig.add_bar(x=(curve["cum_start_t"] + curve["cum_end_t"]) / 2, y=curve["cost_per_t"], width=curve["abated_t"],
                text=curve["label"], hovertemplate="%{text}<br>%{y:,.0f} USD/t<extra></extra>",
                marker_color=np.where(curve["cost_per_t"] < 0, "#2ca02c", "#d62728"),
                marker_line={"color": "white", "width": 1})
    return fig


def dashboard_figures(engine: Engine | Connection, names: Sequence[str] | None = None) -> dict[str, go.Figure]:
    """The dashboard panel: ``{"comparison": ..., "cost_curve": ...}`` for the tenant's stored scenarios
    (``names``, default all); the cost curve is of the first one."""
    names = list(names) if names is not None else list(list_scenarios(engine)["name"])
    results = [run(engine, load(engine, n)) for n in names]
    curve = cost_curve_figure(results[0]) if results else comparison_figure([], "Marginal abatement cost curve")
    return {"comparison": comparison_figure(results), "cost_curve": curve}


def result_table(result: ScenarioResult) -> pd.DataFrame:
    """The per-lever table with a TOTAL row, rounded for printing (t CO2e, USD, years, USD per t)."""
    s = result.summary
    total = pd.DataFrame([{"label": "TOTAL", "kind": "", "start_year": np.nan, "abated_t": s["abated_t"],
                           "abated_target_t": s["reduction_vs_bau_t"],
                           "implementation_cost": s["implementation_cost"], "annual_saving": s["annual_saving"],
                           "payback_years": s["payback_years"], "npv": s["npv"], "cost_per_t": s["cost_per_t"]}])
    table = pd.concat([result.levers, total], ignore_index=True) if len(result.levers) else total
    return table.round({"abated_t": 1, "abated_target_t": 1, "implementation_cost": 0, "annual_saving": 0,
                        "payback_years": 2, "npv": 0, "cost_per_t": 1})
