"""Ember / Energy Institute via Our World in Data: carbon intensity of electricity generation by country."""

from __future__ import annotations

from . import BuiltinRelease, FactorSource, register

SOURCE = register(FactorSource(
    name="ember",
    title="Carbon intensity of electricity generation by country (Ember, Energy Institute, Our World in Data)",
    grid_rank=2,
    builtin={"2023": BuiltinRelease(
        name="Carbon intensity of electricity generation (lifecycle), by country",
        publisher="Ember; Energy Institute; processed by Our World in Data",
        licence="CC BY 4.0",
        citation=("Ember, Yearly Electricity Data, and Energy Institute, Statistical Review of World Energy, with "
                  "processing by Our World in Data, 'Carbon intensity of electricity generation', gCO2e/kWh, 2023"),
    )},
))
