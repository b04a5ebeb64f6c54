"""US EPA eGRID: location-based grid electricity factors by eGRID subregion (built-in: eGRID2023)."""

from __future__ import annotations

from . import BuiltinRelease, FactorSource, register

SOURCE = register(FactorSource(
    name="egrid",
    title="US EPA eGRID subregion total-output emission rates (kg CO2e per kWh)",
    grid_rank=0,
    builtin={"2023": BuiltinRelease(
        name="Emissions & Generation Resource Integrated Database (eGRID2023), subregion output emission rates",
        publisher="US Environmental Protection Agency",
        licence="US Government work (public domain)",
        citation=("US EPA, eGRID2023 (data year 2023), subregion total output emission rates, column SRC2ERTA "
                  "(lb CO2e/MWh) converted to kg CO2e/kWh"),
    )},
))
