"""Physical units of activity data and factors, converted with pint.

Factor units are written the way the factor importers write them (``kWh``, ``tonne.km``,
``passenger.km``, ``room.night``, ``litre``, ``m3``...); activity data may use any compatible unit
(``MWh``, ``t.km``, ``passenger.mile``, ``gallon``...). Money units (``USD_2022``) are not physical
and are handled by :mod:`scope3lib.accounting.currency`.

Conversion factors are computed once per distinct (from, to) pair, so converting a million rows
costs a handful of pint calls.
"""

from __future__ import annotations

import re
from functools import cache

import pint

MONEY_RE = re.compile(r"^([A-Z]{3})_(\d{4})$")

# Spellings seen in activity files and factor sets -> pint expressions. "ton" is deliberately not
# here: in pint it is the US short ton, which a user writing "ton" may not mean.
_ALIASES = {
    "kwh": "kWh", "mwh": "MWh", "gwh": "GWh", "wh": "Wh",
    "tkm": "tonne * km", "t.km": "tonne * km", "tonne-km": "tonne * km", "tonnes.km": "tonne * km",
    "pkm": "passenger * km", "p.km": "passenger * km", "passenger-km": "passenger * km",
    "room.night": "room_night", "room night": "room_night", "room nights": "room_night",
    "night": "room_night", "nights": "room_night",
    "litres": "litre", "liters": "liter", "l": "litre",
    "tonnes": "tonne", "t": "tonne", "m3": "meter ** 3", "cubic metres": "meter ** 3",
    "miles": "mile", "megalitre": "megaliter",
    # Counted goods, as purchase lines and PACT's declared unit "piece" write them ("pc" is not a parsec here).
    "pc": "piece", "pcs": "piece", "ea": "piece", "each": "piece",
}  # fmt: skip


@cache
def registry() -> pint.UnitRegistry:
    ureg: pint.UnitRegistry = pint.UnitRegistry()
    # Counted things that factors are stated per: a passenger, a room-night in a hotel, a piece of a product.
    ureg.define("passenger = [passenger] = pax")
    ureg.define("room_night = [room_night]")
    # A counted product (PACT's declared unit "piece"): pieces convert only to pieces.
    ureg.define("piece = [piece]")
    return ureg


def pint_expression(unit: str) -> str:
    """``"tonne.km"`` -> ``"tonne * km"``: pint reads a product with ``*``, factor sets write ``.``."""
    text = " ".join(str(unit).split())
    alias = _ALIASES.get(text.lower())
    if alias is not None:
        return alias
    return re.sub(r"(?<=[A-Za-z0-9])\.(?=[A-Za-z])", " * ", text)


@cache
def conversion(from_unit: str, to_unit: str) -> tuple[float | None, str | None]:
    """``(multiplier, None)`` so that ``quantity_in_from * multiplier`` is in ``to_unit``, or
    ``(None, reason)`` when the units cannot be converted."""
    if from_unit == to_unit:
        return 1.0, None
    ureg = registry()
    try:
        source = ureg.parse_units(pint_expression(from_unit))
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError, TypeError,
            ValueError, AssertionError):
        return None, f"unknown unit {from_unit!r}"
    try:
        target = ureg.parse_units(pint_expression(to_unit))
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError, TypeError,
            ValueError, AssertionError):
        return None, f"the factor's unit {to_unit!r} is not a physical unit"
    try:
        return float(ureg.Quantity(1.0, source).to(target).magnitude), None
    except pint.errors.DimensionalityError:
        return None, (
            f"unit {from_unit!r} cannot be converted to the factor's unit {to_unit!r} "
            f"({source.dimensionality} vs {target.dimensionality})"
        )


@cache
def dimensionality(unit: str) -> str | None:
    """pint's dimensionality of ``unit`` as text (``"[length] * [mass]"``), None if not a unit."""
    try:
        return str(registry().parse_units(pint_expression(unit)).dimensionality)
    except Exception:
        return None


@cache
def is_transport_unit(unit: str) -> bool:
    """True for a distance, or a distance times mass (tonne.km) or passengers (passenger.km)."""
    dims = dimensionality(unit)
    return dims is not None and dims in {dimensionality("km"), dimensionality("tonne.km"),
                                         dimensionality("passenger.km")}
