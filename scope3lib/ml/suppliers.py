"""The tenant's suppliers as the ML models see them: one row each, with emissions, spend and intensity."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..accounting import entries
from ..categories import Method


def tenant_suppliers(engine: Engine | Connection) -> pd.DataFrame:
    """The tenant's suppliers with what the estimator needs, one row each.

    Columns: supplier_id, name, naics_code, country, region, annual_spend (USD; the entries' spend when the
    supplier has none), category (the category most of its emissions fall in), kg_co2e, spend_usd,
    intensity (kg CO2e per USD from its supplier-specific entries; NaN when it does not report), reports.
    """
    sup = db.read_frame(engine, "SELECT id AS supplier_id, name, naics_code, country, region, annual_spend, "
                                "spend_currency FROM suppliers ORDER BY id")
    e = entries.read(engine)
    e = e[e["supplier_id"].notna()].astype({"supplier_id": "int64"})
    totals = e.groupby("supplier_id").agg(kg_co2e=("kg_co2e", "sum"), spend_usd=("spend_usd", "sum"))
    own = e[e["method"] == Method.SUPPLIER_SPECIFIC.value].groupby("supplier_id")[["kg_co2e", "spend_usd"]].sum()
    intensity = (own["kg_co2e"] / own["spend_usd"]).rename("intensity")
    main_cat = (e.groupby(["supplier_id", "category"])["kg_co2e"].sum().reset_index()
                .sort_values(["supplier_id", "kg_co2e"], ascending=[True, False])
                .drop_duplicates("supplier_id").set_index("supplier_id")["category"])
    df = sup.set_index("supplier_id").join(totals).join(intensity).join(main_cat.rename("category"))
    df["annual_spend"] = pd.to_numeric(df["annual_spend"], errors="coerce").astype(float).fillna(df["spend_usd"])
    df["category"] = df["category"].fillna(1).astype(int)
    df["reports"] = df["intensity"].notna() & (df["intensity"] > 0)
    return df.reset_index().drop(columns=["spend_currency"])
