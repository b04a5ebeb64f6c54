"""The PACT v3 ProductFootprint, validated the way this platform takes footprints in.

Field names are the specification's own (camelCase), so ``model.to_json()`` is exactly the JSON shape of
PACT Technical Specifications v3.0.x (https://wbcsd.github.io/tr/data-exchange-protocol/latest/, its OpenAPI
schema at .../latest/openapi.yaml). Numbers stay the decimal strings the spec mandates (``"1.85"``), so a
footprint is served back digit for digit; :func:`decimal` reads one as a ``Decimal``.

What is refused (:func:`parse_footprints`) is the OpenAPI schema plus the spec's explicit MUSTs on single
values; what the PACT Methodology only asks for (SHALL properties, the validity window of spec section 7.3,
which the spec's own examples do not keep) is reported by :func:`notes` and does not refuse a footprint.
docs/pact.md has the table of every property.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StrictBool,
    ValidationError,
)

from scope3lib.errors import FootprintRefused, Problem

SPEC_MAJOR = "3"

DeclaredUnit = Literal["liter", "kilogram", "cubic meter", "kilowatt hour", "megajoule", "ton kilometer",
                       "square meter", "piece", "hour", "megabit second"]
Status = Literal["Active", "Deprecated"]
Region = Literal["Africa", "Americas", "Asia", "Europe", "Oceania", "Australia and New Zealand", "Central Asia",
                 "Eastern Asia", "Eastern Europe", "Latin America and the Caribbean", "Melanesia", "Micronesia",
                 "Northern Africa", "Northern America", "Northern Europe", "Polynesia", "South-eastern Asia",
                 "Southern Asia", "Southern Europe", "Sub-Saharan Africa", "Western Asia", "Western Europe"]
RuleOperator = Literal["PEF", "EPD International", "Other"]
CcuApproach = Literal["Cut-off", "Credit"]
Coverage = Literal["PCF calculation model", "PCF program", "product level"]
ErrorCode = Literal["BadRequest", "AccessDenied", "TokenExpired", "NotFound", "InternalError", "NotImplemented"]

# The schema's patterns, written with [0-9] because Python's \d also matches non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
# ajv-formats' "uuid", which is what the conformance service checks footprints with.
_UUID = re.compile(r"(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", re.I)
_URN = re.compile(r"[uU][rR][nN]:.+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_SPEC_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9]{8})?")
_AR = re.compile(r"AR[0-9]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


def show(value: object) -> str:
    """A value as a user reads it in a message: ``'kilo'``, ``the number 1.5``, ``null``, ``an object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _text(value: object, what: str, example: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not {what}: write it as a string, e.g. {example}")
    return value


def _decimal(sign: str) -> Callable[[object], str]:
    """A validator of the spec's ``string<decimal>`` with a sign constraint: ``""``, ``">0"``, ``">=0"``, ``"<=0"``."""

    def check(value: object) -> str:
        text = _text(value, "a decimal", '"1.5"')
        if not _DECIMAL.fullmatch(text):
            raise ValueError(f"{show(text)} is not a decimal: digits with an optional sign and decimal point, "
                             'no exponent or thousands separator, e.g. "-0.25"')
        number = Decimal(text)
        if (sign == ">0" and number <= 0) or (sign == ">=0" and (number < 0 or text.startswith("-"))):
            raise ValueError(f"{show(text)} must be {'greater than 0' if sign == '>0' else '0 or more'}")
        if sign == "<=0" and number > 0:
            raise ValueError(f"{show(text)} must be 0 or less (removals and uptake are negative)")
        return text

    return check


def _matching(pattern: re.Pattern[str], what: str, example: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value, what, example)
        if not pattern.fullmatch(text):
            raise ValueError(f"{show(text)} is not {what}, e.g. {example}")
        return text

    return check


def one_of(choices: Any) -> Callable[[object], str]:
    values: tuple[str, ...] = get_args(choices)

    def check(value: object) -> str:
        if value not in values:
            raise ValueError(f"{show(value)} is not one of {', '.join(values)}")
        return str(value)

    return check


def _non_empty(value: object) -> str:
    if _text(value, "text", '"Acme"') == "":
        raise ValueError("must not be empty")
    return str(value)


def parse_date_time(value: object) -> datetime:
    """ISO 8601 / RFC 3339 text with a time zone; the spec's ``string<date-time>``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    text = _text(value, "a date-time", '"2025-01-01T00:00:00Z"')
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{show(text)} is not a date-time, e.g. \"2025-01-01T00:00:00Z\"") from None
    if parsed.tzinfo is None or "T" not in text.upper():
        raise ValueError(f"{show(text)} has no time or no time zone: write e.g. \"2025-01-01T00:00:00Z\" (Z is UTC)")
    return parsed


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise ValueError(f"lists {show(value)} twice; every value must be unique")
        seen.append(value)
    return values


def at_least_one(values: list[Any]) -> list[Any]:
    if not values:
        raise ValueError("is an empty list: give at least one value, or leave the property out where it is optional")
    return values


def _set(values: list[Any]) -> list[Any]:
    return _unique(at_least_one(values))


Text = Annotated[str, BeforeValidator(lambda v: _text(v, "text", '"Acme"'))]
NonEmptyText = Annotated[str, BeforeValidator(_non_empty)]
DecimalText = Annotated[str, BeforeValidator(_decimal(""))]
PositiveDecimal = Annotated[str, BeforeValidator(_decimal(">0"))]
PositiveOrZeroDecimal = Annotated[str, BeforeValidator(_decimal(">=0"))]
NegativeOrZeroDecimal = Annotated[str, BeforeValidator(_decimal("<=0"))]
Uuid = Annotated[str, BeforeValidator(_matching(_UUID, "a UUID", '"f4b1225a-bd44-4c8e-861d-079e4e1dfd69"'))]
Urn = Annotated[str, BeforeValidator(_matching(_URN, "a URN (it must start with 'urn:')", '"urn:gtin:4712345060507"'))]
Uri = Annotated[str, BeforeValidator(_matching(_URI, "a URI", '"https://example.org/schema.json"'))]
DateTime = Annotated[datetime, BeforeValidator(parse_date_time), PlainSerializer(_rfc3339, return_type=str)]
IpccReport = Annotated[str, BeforeValidator(_matching(_AR, "an IPCC assessment report (AR and a number)", '"AR6"'))]
Country = Annotated[str, BeforeValidator(_matching(_COUNTRY, "an ISO 3166-1 alpha-2 country code", '"DE"'))]
Subdivision = Annotated[str, BeforeValidator(_matching(_SUBDIVISION, "an ISO 3166-2 subdivision code", '"DE-BW"'))]
# The spec's NonEmpty + Unique qualifiers on arrays.
UrnSet = Annotated[list[Urn], AfterValidator(_set)]
UuidSet = Annotated[list[Uuid], AfterValidator(_set)]
TextSet = Annotated[list[Text], AfterValidator(_set)]
NonEmptyTextSet = Annotated[list[NonEmptyText], AfterValidator(_set)]
IpccReportSet = Annotated[list[IpccReport], AfterValidator(_set)]


class _Spec(BaseModel):
    # Properties the spec does not define are kept (a later 3.x may add some) and served back unchanged.
    model_config = ConfigDict(extra="allow", frozen=True)


class DataQualityIndicators(_Spec):
    technologicalDQR: DecimalText
    geographicalDQR: DecimalText
    temporalDQR: DecimalText


class Verification(_Spec):
    coverage: Annotated[Coverage, BeforeValidator(one_of(Coverage))] | None = None
    providerName: Text | None = None
    completedAt: DateTime | None = None
    standardName: Text | None = None
    comments: Text | None = None


class EmissionFactorSource(_Spec):
    name: NonEmptyText
    version: NonEmptyText


class ProductOrSectorSpecificRule(_Spec):
    operator: Annotated[RuleOperator, BeforeValidator(one_of(RuleOperator))]
    ruleNames: NonEmptyTextSet
    otherOperatorName: NonEmptyText | None = None


class DataModelExtension(_Spec):
    specVersion: Text
    dataSchema: Uri
    documentation: Uri | None = None
    data: dict[str, Any]


class Error(_Spec):
    """The spec's Error object: the body of every error answer of the API, and of a RequestRejected event."""

    code: Annotated[ErrorCode, BeforeValidator(one_of(ErrorCode))]
    message: Text


class CarbonFootprint(_Spec):
    """The ``pcf`` of a footprint. Emission values are kgCO2e per declared unit (``declaredUnitAmount``
    ``declaredUnitOfMeasurement``), carbon contents kgC per declared unit."""

    declaredUnitOfMeasurement: Annotated[DeclaredUnit, BeforeValidator(one_of(DeclaredUnit))]
    declaredUnitAmount: PositiveDecimal
    productMassPerDeclaredUnit: DecimalText
    referencePeriodStart: DateTime
    referencePeriodEnd: DateTime
    geographyRegionOrSubregion: Annotated[Region, BeforeValidator(one_of(Region))] | None = None
    geographyCountry: Country | None = None
    geographyCountrySubdivision: Subdivision | None = None
    boundaryProcessesDescription: Text | None = None
    pcfExcludingBiogenicUptake: DecimalText
    pcfIncludingBiogenicUptake: DecimalText
    fossilGhgEmissions: PositiveOrZeroDecimal
    fossilCarbonContent: PositiveOrZeroDecimal
    biogenicCarbonContent: PositiveOrZeroDecimal | None = None
    recycledCarbonContent: PositiveOrZeroDecimal | None = None
    landUseChangeGhgEmissions: PositiveOrZeroDecimal | None = None
    landCarbonLeakage: PositiveOrZeroDecimal | None = None
    landManagementFossilGhgEmissions: PositiveOrZeroDecimal | None = None
    landManagementBiogenicCO2Emissions: PositiveOrZeroDecimal | None = None
    landManagementBiogenicCO2Removals: NegativeOrZeroDecimal | None = None
    biogenicCO2Uptake: NegativeOrZeroDecimal | None = None
    biogenicNonCO2Emissions: PositiveOrZeroDecimal | None = None
    landAreaOccupation: PositiveOrZeroDecimal | None = None
    aircraftGhgEmissions: PositiveOrZeroDecimal | None = None
    packagingEmissionsIncluded: StrictBool | None = None
    packagingGhgEmissions: PositiveOrZeroDecimal | None = None
    packagingBiogenicCarbonContent: PositiveOrZeroDecimal | None = None
    outboundLogisticsGhgEmissions: PositiveOrZeroDecimal | None = None
    ccsTechnologicalCO2CaptureIncluded: StrictBool | None = None
    ccsTechnologicalCO2Capture: NegativeOrZeroDecimal | None = None
    technologicalCO2CaptureOrigin: Text | None = None
    technologicalCO2Removals: NegativeOrZeroDecimal | None = None
    ccuCarbonContent: PositiveOrZeroDecimal | None = None
    ccuCalculationApproach: Annotated[CcuApproach, BeforeValidator(one_of(CcuApproach))] | None = None
    ccuCreditCertification: Uri | None = None
    ipccCharacterizationFactors: IpccReportSet
    # Values beyond the spec's list (ISO14067, PACT-3.0...) are accepted: the spec says a host MUST.
    crossSectoralStandards: TextSet
    productOrSectorSpecificRules: Annotated[list[ProductOrSectorSpecificRule], AfterValidator(_set)] | None = None
    exemptedEmissionsPercent: DecimalText
    exemptedEmissionsDescription: Text | None = None
    allocationRulesDescription: Text | None = None
    secondaryEmissionFactorSources: Annotated[list[EmissionFactorSource], AfterValidator(_set)] | None = None
    primaryDataShare: DecimalText | None = None
    dqi: DataQualityIndicators | None = None
    verification: Verification | None = None

    @property
    def geography(self) -> str | None:
        """The one geography of the footprint (region, country or subdivision), None for a global one."""
        return self.geographyCountrySubdivision or self.geographyCountry or self.geographyRegionOrSubregion


class ProductFootprint(_Spec):
    """A PACT v3 ProductFootprint: one product's carbon footprint, immutable once published (a change is a new
    footprint with a new ``id`` that lists the old one in ``precedingPfIds``; the old one becomes Deprecated)."""

    id: Uuid
    specVersion: Annotated[str, BeforeValidator(_matching(_SPEC_VERSION, "a version major.minor.patch", '"3.0.3"'))]
    precedingPfIds: UuidSet | None = None
    created: DateTime
    status: Annotated[Status, BeforeValidator(one_of(Status))]
    validityPeriodStart: DateTime | None = None
    validityPeriodEnd: DateTime | None = None
    companyName: NonEmptyText
    companyIds: UrnSet
    productDescription: Text
    productIds: UrnSet
    productClassifications: UrnSet | None = None
    productNameCompany: NonEmptyText
    comment: Text | None = None
    pcf: CarbonFootprint
    extensions: list[DataModelExtension] | None = None

    def to_json(self) -> dict[str, Any]:
        """The footprint as the spec's JSON object (undefined properties left out, date-times in UTC as ``Z``)."""
        return self.model_dump(mode="json", exclude_none=True)

    def validity(self) -> tuple[datetime, datetime]:
        """``(start, end)`` of the validity period; without one, the spec's default: 3 years from
        ``referencePeriodEnd`` (spec section 7.3)."""
        start = self.validityPeriodStart or self.pcf.referencePeriodEnd
        end = self.validityPeriodEnd or add_years(self.pcf.referencePeriodEnd, 3)
        return start, end


def add_years(moment: datetime, years: int) -> datetime:
    """``moment`` plus whole calendar years; 29 February becomes 28 February in a common year."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def decimal(text: str) -> Decimal:
    """A footprint's decimal string as a number: ``decimal(fp.pcf.pcfExcludingBiogenicUptake)``."""
    return Decimal(text)


# ----------------------------------------------------------------------------------------------------------
# Refusals in the user's terms


# PACT v2 names of v3 properties, so that a v2 footprint is told what it is rather than only what is missing.
V2_NAMES = {
    "declaredUnitOfMeasurement": "declaredUnit", "declaredUnitAmount": "unitaryProductAmount",
    "pcfExcludingBiogenicUptake": "pCfExcludingBiogenic", "pcfIncludingBiogenicUptake": "pCfIncludingBiogenic",
    "crossSectoralStandards": "crossSectoralStandardsUsed", "ipccCharacterizationFactors": "characterizationFactors",
}  # fmt: skip


def json_path(prefix: str, loc: Iterable[int | str]) -> str:
    """``("pcf", "productIds", 0)`` under ``footprints[3]`` -> ``footprints[3].pcf.productIds[0]``."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _message(error: Mapping[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        name = str(error["loc"][-1]) if error["loc"] else ""
        old = V2_NAMES.get(name)
        if old and isinstance(value, Mapping) and old in value:
            return f"is missing; this looks like a PACT v2 footprint: v2's {old!r} is {name!r} in v3"
        return "is missing (required)"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{show(value)} is not an object ({{...}})"
    if kind == "list_type":
        return f"{show(value)} is not a list ([...])"
    if kind == "bool_type":
        return f"{show(value)} is not true or false"
    return str(error["msg"])


def problems_of(error: ValidationError, prefix: str = "") -> list[Problem]:
    """Every problem pydantic found, as ``(json path, message)``."""
    return [(json_path(prefix, e["loc"]) or "(the document)", _message(e)) for e in error.errors(include_url=False)]


def _geography_problems(pcf: CarbonFootprint) -> list[Problem]:
    given = [n for n in ("geographyRegionOrSubregion", "geographyCountry", "geographyCountrySubdivision")
             if getattr(pcf, n) is not None]
    if len(given) < 2:
        return []
    return [("pcf." + given[1], f"is set together with {given[0]}; a footprint has one geography (a region, a "
                                "country or a subdivision; none means global): leave out all but one")]


def consistency_problems(fp: ProductFootprint) -> list[Problem]:
    """The spec's MUSTs that relate two values, which the OpenAPI schema cannot say."""
    pcf, found = fp.pcf, _geography_problems(fp.pcf)
    if fp.specVersion.split(".")[0] != SPEC_MAJOR:
        found.append(("specVersion", f"{fp.specVersion!r} is not a PACT v3 footprint; this platform takes 3.x.y"))
    if pcf.referencePeriodEnd <= pcf.referencePeriodStart:
        found.append(("pcf.referencePeriodEnd", "must be after referencePeriodStart"))
    if fp.validityPeriodStart and fp.validityPeriodEnd and fp.validityPeriodEnd <= fp.validityPeriodStart:
        found.append(("validityPeriodEnd", "must be after validityPeriodStart"))
    if pcf.packagingEmissionsIncluded is False and pcf.packagingGhgEmissions is not None:
        found.append(("pcf.packagingGhgEmissions", "must be left out when packagingEmissionsIncluded is false"))
    for name in ("technologicalDQR", "geographicalDQR", "temporalDQR"):
        value = getattr(pcf.dqi, name) if pcf.dqi else None
        if value is not None and not Decimal(1) <= Decimal(value) <= Decimal(5):
            found.append((f"pcf.dqi.{name}", f"{value!r} is not a rating between 1 and 5"))
    for i, rule in enumerate(pcf.productOrSectorSpecificRules or []):
        if rule.operator == "Other" and not rule.otherOperatorName:
            found.append((f"pcf.productOrSectorSpecificRules[{i}].otherOperatorName",
                          "is missing: the operator is Other, so name it here"))
    return found


def without_nulls(value: Any) -> Any:
    """The spec (section 4.5): a property set to null is undefined, as if it were absent."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def check_footprint(data: object, where: str = "") -> tuple[ProductFootprint | None, list[Problem]]:
    """``(footprint, [])`` for a valid footprint, ``(None, problems)`` otherwise; paths start with ``where``."""
    try:
        footprint = ProductFootprint.model_validate(without_nulls(data))
    except ValidationError as error:
        return None, problems_of(error, where)
    found = [(json_path(where, path.split(".")), message) for path, message in consistency_problems(footprint)]
    return (None, found) if found else (footprint, [])


def parse_footprints(items: object, source: str = "footprints") -> list[ProductFootprint]:
    """Validate a JSON array of ProductFootprints; all or nothing.

    Raises :class:`~scope3lib.errors.FootprintRefused` listing every problem of every refused footprint as
    ``footprints[3].pcf.declaredUnitOfMeasurement: 'kilo' is not one of liter, kilogram, ...``.
    """
    if not isinstance(items, list):
        raise FootprintRefused(source, {0: [(source, f"{show(items)} is not a JSON array of footprints ([...])")]}, 1)
    footprints, refusals = [], {}
    for index, item in enumerate(items):
        footprint, found = check_footprint(item, f"{source}[{index}]")
        if footprint is None:
            refusals[index] = found
        else:
            footprints.append(footprint)
    if refusals:
        raise FootprintRefused(source, refusals, len(items))
    return footprints


def parse_footprint(data: object, source: str = "footprint") -> ProductFootprint:
    """One footprint (a JSON object); :class:`~scope3lib.errors.FootprintRefused` with its problems."""
    footprint, found = check_footprint(data, source)
    if footprint is None:
        raise FootprintRefused(source, {0: found}, 1)
    return footprint


def notes(fp: ProductFootprint) -> list[Problem]:
    """What the PACT Methodology asks for and the footprint does not give; none of it refuses the footprint.

    The SHALL properties the schema leaves optional, and the validity window of spec section 7.3 (from
    ``referencePeriodEnd`` to at most 3 years after it), which the spec's own examples do not keep.
    """
    pcf, found = fp.pcf, []
    for name in ("primaryDataShare", "packagingEmissionsIncluded", "ccsTechnologicalCO2CaptureIncluded"):
        if getattr(pcf, name) is None:
            found.append((f"pcf.{name}", "is not given; the PACT Methodology says it SHALL be reported"))
    if fp.validityPeriodStart and fp.validityPeriodStart < pcf.referencePeriodEnd:
        found.append(("validityPeriodStart", "is before pcf.referencePeriodEnd; spec section 7.3 starts validity "
                                             "at the end of the reference period or later"))
    latest = add_years(pcf.referencePeriodEnd, 3)
    if fp.validityPeriodEnd and fp.validityPeriodEnd > latest:
        found.append(("validityPeriodEnd", f"is after {_rfc3339(latest)}, 3 years after pcf.referencePeriodEnd "
                                           "(the longest validity spec section 7.3 allows)"))
    return found


__all__ = ["CarbonFootprint", "DataModelExtension", "DataQualityIndicators", "EmissionFactorSource", "Error",
           "ProductFootprint", "ProductOrSectorSpecificRule", "Verification", "add_years", "check_footprint",
           "decimal", "json_path", "notes", "parse_date_time", "parse_footprint", "parse_footprints", "problems_of",
           "show", "without_nulls"]
