"""Purchases priced by a supplier's PACT footprint: a quantity in the purchase's unit, in declared units.

A PACT footprint states kgCO2e per *declared unit*, which is ``declaredUnitAmount`` times
``declaredUnitOfMeasurement`` (a footprint of "2 kgCO2e per 12.5 liter" has amount 12.5, unit liter). A
purchase of ``q`` in unit ``u`` is ``q * declared_units_per(u, pcf)`` declared units, and emits that times
the footprint's PCF. Units convert with the platform's pint registry (:mod:`scope3lib.accounting.units`);
a purchase by mass of a product declared per liter or piece converts through ``productMassPerDeclaredUnit``
(kg per declared unit) when the footprint gives one.

The PCF used is ``pcfExcludingBiogenicUptake`` unless asked otherwise: the GHG Protocol reports biogenic
removals apart from Scope 3 emissions.
"""

from __future__ import annotations

import pandas as pd

from scope3lib.accounting.units import conversion
from scope3lib.errors import UnitNotConvertible
from scope3lib.pact.model import CarbonFootprint

# PACT's declaredUnitOfMeasurement -> the pint expression of the platform's registry. "ton kilometer" is
# the metric tonne-kilometre (ISO 14083), not pint's US short ton.
PACT_UNITS = {
    "liter": "liter", "kilogram": "kilogram", "cubic meter": "meter ** 3", "kilowatt hour": "kWh",
    "megajoule": "MJ", "ton kilometer": "tonne * km", "square meter": "meter ** 2", "piece": "piece",
    "hour": "hour", "megabit second": "megabit * second",
}  # fmt: skip


def declared_units_per(unit: str, pcf: CarbonFootprint) -> float:
    """How many of the footprint's declared units one ``unit`` of the product is.

    Raises :class:`~scope3lib.errors.UnitNotConvertible` when neither the unit nor its mass converts."""
    target = PACT_UNITS[pcf.declaredUnitOfMeasurement]
    factor, reason = conversion(unit, target)
    if factor is not None:
        return factor / float(pcf.declaredUnitAmount)
    kilograms, _ = conversion(unit, "kilogram")
    mass = float(pcf.productMassPerDeclaredUnit)
    if kilograms is not None and mass > 0:
        return kilograms / mass
    declared = f"{pcf.declaredUnitAmount} {pcf.declaredUnitOfMeasurement}"
    if kilograms is not None:
        raise UnitNotConvertible(
            f"a purchase in {unit!r} (a mass) cannot be priced by a footprint declared per {declared} that gives no "
            f"productMassPerDeclaredUnit (it is 0); record the purchase in {pcf.declaredUnitOfMeasurement}s")
    raise UnitNotConvertible(
        f"a purchase in {unit!r} cannot be priced by a footprint declared per {declared} "
        f"({reason.replace(' the factor', ' the footprint') if reason else 'units differ'}); record the purchase "
        f"in {pcf.declaredUnitOfMeasurement}s" + (" or kilograms" if mass > 0 else ""))


def emissions_per(unit: str, pcf: CarbonFootprint, including_biogenic_uptake: bool = False) -> float:
    """kgCO2e of one ``unit`` of the product by this footprint."""
    per_declared_unit = pcf.pcfIncludingBiogenicUptake if including_biogenic_uptake else pcf.pcfExcludingBiogenicUptake
    return declared_units_per(unit, pcf) * float(per_declared_unit)


def purchase_emissions(quantities: pd.Series, units: pd.Series, pcf: CarbonFootprint,
                       including_biogenic_uptake: bool = False) -> pd.Series:
    """kgCO2e of each purchase line (quantity in its unit) priced by one footprint; one conversion per unit."""
    per_unit = {unit: emissions_per(str(unit), pcf, including_biogenic_uptake) for unit in units.unique()}
    return quantities.astype(float) * units.map(per_unit).astype(float)
