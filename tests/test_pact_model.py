"""PACT v3 without a database: footprints taken or refused (with the field and why), the list filters as
the spec and the conformance service define them, the CloudEvents of /3/events, purchases in declared units.

The footprints are written here, shaped like the spec's example footprint (a bulk bio-ethanol per liter);
the filter tests mirror the conformance service's test cases 20 to 39 and the event tests its 12 to 17 and 40.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest

from scope3lib import pages
from scope3lib.errors import (
    EventRefused,
    FootprintNotFound,
    FootprintRefused,
    InvalidFilter,
    PactError,
    Scope3Error,
    UnitNotConvertible,
)
from scope3lib.pact import events, filters, pagination, units
from scope3lib.pact.model import ProductFootprint, add_years, notes, parse_footprint, parse_footprints
from scope3lib.suppliers import pcf_pricing

FIRST = "3a6c14a7-4deb-498a-b5ea-16ce2535b576"


def footprint(**changes: Any) -> dict[str, Any]:
    """A valid v3 footprint; ``changes`` set properties by dotted path (``pcf.geographyCountry="DE"``), a value
    of ``...`` removes one."""
    data: dict[str, Any] = {
        "id": FIRST, "specVersion": "3.0.3", "created": "2025-02-01T08:00:00Z", "status": "Active",
        "companyName": "Ethanol Works", "companyIds": ["urn:pact:ethanol-works.example:company-id:1"],
        "productDescription": "Bio-ethanol 98%, corn feedstock, bulk without packaging",
        "productIds": ["urn:gtin:4712345060507"],
        "productClassifications": ["urn:pact:cas.org:substance-number:64-17-5"],
        "productNameCompany": "Green Ethanol", "comment": "",
        "pcf": {
            "declaredUnitOfMeasurement": "liter", "declaredUnitAmount": "1", "productMassPerDeclaredUnit": "0.789",
            "referencePeriodStart": "2024-01-01T00:00:00Z", "referencePeriodEnd": "2025-01-01T00:00:00Z",
            "geographyCountry": "DE", "pcfExcludingBiogenicUptake": "1.85", "pcfIncludingBiogenicUptake": "0.35",
            "fossilGhgEmissions": "1.5", "fossilCarbonContent": "0", "biogenicCarbonContent": "0.41",
            "landManagementBiogenicCO2Removals": "-0.4", "biogenicCO2Uptake": "-1.5",
            "packagingEmissionsIncluded": False, "ccsTechnologicalCO2CaptureIncluded": False,
            "ipccCharacterizationFactors": ["AR6"], "crossSectoralStandards": ["GHGP-Product", "ISO14067"],
            "productOrSectorSpecificRules": [{"operator": "Other", "ruleNames": ["TfS PCF Guideline 2.0"],
                                              "otherOperatorName": "Together for Sustainability"}],
            "exemptedEmissionsPercent": "0",
            "secondaryEmissionFactorSources": [{"name": "ecoinvent", "version": "3.9.1"}], "primaryDataShare": "12.9",
            "dqi": {"technologicalDQR": "1.6", "geographicalDQR": "1.8", "temporalDQR": "2.6"},
            "verification": {"coverage": "product level", "providerName": "An Auditor",
                             "completedAt": "2025-01-20T00:00:00Z"},
        },
        "extensions": [{"specVersion": "2.0.0", "dataSchema": "https://example.org/shipment/1.0.0/data-model.json",
                        "data": {"shipmentId": "S1234567890", "weight": 10}}],
    }  # fmt: skip
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def refusal(bad: dict[str, Any]) -> list[tuple[str, str]]:
    """The problems of ``bad`` when it is the second footprint of a batch whose first is valid."""
    with pytest.raises(FootprintRefused) as caught:
        parse_footprints([footprint(), bad])
    assert set(caught.value.refusals) == {1}, "only the bad footprint is refused"
    assert caught.value.total == 2
    return caught.value.refusals[1]


# ------------------------------------------------------------------------------------------------ the model


def test_a_footprint_shaped_like_the_spec_example_is_taken_and_served_back_as_given() -> None:
    [fp] = parse_footprints([footprint()])
    assert fp.pcf.declaredUnitOfMeasurement == "liter"
    assert fp.pcf.pcfExcludingBiogenicUptake == "1.85"
    assert fp.to_json() == footprint()
    assert json.loads(json.dumps(fp.to_json())) == footprint()


def test_null_is_undefined_as_the_spec_says() -> None:
    fp = parse_footprint(footprint(comment=None, **{"pcf.primaryDataShare": None}))
    assert fp.comment is None and "comment" not in fp.to_json()
    assert refusal(footprint(status=None)) == [("footprints[1].status", "is missing (required)")]


def test_properties_the_spec_does_not_define_are_kept_for_later_versions() -> None:
    fp = parse_footprint(footprint(**{"pcf.crossSectoralStandards": ["ISO14067", "PACT-3.1"],
                                      "pcf.someFutureProperty": "x"}))
    assert fp.to_json()["pcf"]["someFutureProperty"] == "x"
    assert fp.to_json()["pcf"]["crossSectoralStandards"] == ["ISO14067", "PACT-3.1"]


@pytest.mark.parametrize(("path", "value", "where", "message"), [
    ("pcf.declaredUnitOfMeasurement", "kilo", "pcf.declaredUnitOfMeasurement",
     "'kilo' is not one of liter, kilogram, cubic meter, kilowatt hour, megajoule, ton kilometer, square meter, "
     "piece, hour, megabit second"),
    ("pcf.declaredUnitAmount", "0", "pcf.declaredUnitAmount", "'0' must be greater than 0"),
    ("pcf.fossilGhgEmissions", 1.5, "pcf.fossilGhgEmissions",
     'the number 1.5 is not a decimal: write it as a string, e.g. "1.5"'),
    ("pcf.pcfExcludingBiogenicUptake", "1.2e3", "pcf.pcfExcludingBiogenicUptake", "'1.2e3' is not a decimal"),
    ("pcf.fossilCarbonContent", "-1", "pcf.fossilCarbonContent", "'-1' must be 0 or more"),
    ("pcf.biogenicCO2Uptake", "0.5", "pcf.biogenicCO2Uptake", "'0.5' must be 0 or less"),
    ("id", "42", "id", "'42' is not a UUID"),
    ("precedingPfIds", [FIRST, FIRST], "precedingPfIds", "lists '3a6c14a7-4deb-498a-b5ea-16ce2535b576' twice"),
    ("productIds", ["gtin:4712345060507"], "productIds[0]", "'gtin:4712345060507' is not a URN"),
    ("productIds", [], "productIds", "is an empty list"),
    ("companyIds", "urn:pact:x:y:1", "companyIds", "'urn:pact:x:y:1' is not a list"),
    ("status", "Retired", "status", "'Retired' is not one of Active, Deprecated"),
    ("created", "2025-02-01", "created", "'2025-02-01' has no time or no time zone"),
    ("created", "2025-02-01T08:00:00", "created", "'2025-02-01T08:00:00' has no time or no"),
    ("companyName", "", "companyName", "must not be empty"),
    ("companyName", ..., "companyName", "is missing (required)"),
    ("pcf", ..., "pcf", "is missing (required)"),
    ("pcf.geographyCountry", "Germany", "pcf.geographyCountry", "'Germany' is not an ISO 3166-1 alpha-2"),
    ("pcf.ipccCharacterizationFactors", ["AR 6"], "pcf.ipccCharacterizationFactors[0]", "'AR 6' is not an IPCC"),
    ("pcf.packagingEmissionsIncluded", "yes", "pcf.packagingEmissionsIncluded", "'yes' is not true or false"),
    ("pcf.dqi", [], "pcf.dqi", "a list is not an object"),
    ("pcf.dqi.technologicalDQR", "7", "pcf.dqi.technologicalDQR", "'7' is not a rating between 1 and 5"),
    ("pcf.verification.coverage", "everything", "pcf.verification.coverage", "'everything' is not one of"),
    ("pcf.geographyRegionOrSubregion", "Western Europe", "pcf.geographyCountry",
     "is set together with geographyRegionOrSubregion; a footprint has one geography"),
    ("pcf.referencePeriodEnd", "2023-01-01T00:00:00Z", "pcf.referencePeriodEnd", "must be after referencePeriodStart"),
    ("pcf.packagingGhgEmissions", "0.1", "pcf.packagingGhgEmissions", "must be left out when packagingEmissionsIn"),
    ("pcf.productOrSectorSpecificRules", [{"operator": "Other", "ruleNames": ["X"]}],
     "pcf.productOrSectorSpecificRules[0].otherOperatorName", "is missing: the operator is Other"),
    ("specVersion", "2.3.0", "specVersion", "'2.3.0' is not a PACT v3 footprint"),
    ("extensions", [{"specVersion": "1.0.0", "dataSchema": "not a uri", "data": {}}], "extensions[0].dataSchema",
     "'not a uri' is not a URI"),
])  # fmt: skip
def test_each_kind_of_invalid_footprint_is_refused_with_its_field_and_why(path: str, value: Any, where: str,
                                                                          message: str) -> None:
    [(got_path, got_message)] = refusal(footprint(**{path: value}))
    assert got_path == f"footprints[1].{where}"
    assert got_message.startswith(message), got_message


def test_a_pact_v2_footprint_is_told_the_v3_names() -> None:
    bad = footprint(**{"pcf.declaredUnitOfMeasurement": ..., "pcf.declaredUnit": "liter"})
    assert refusal(bad) == [("footprints[1].pcf.declaredUnitOfMeasurement",
                             "is missing; this looks like a PACT v2 footprint: v2's 'declaredUnit' is "
                             "'declaredUnitOfMeasurement' in v3")]


def test_every_problem_of_every_footprint_is_reported_and_nothing_is_taken() -> None:
    bad = footprint(**{"pcf.declaredUnitOfMeasurement": "kilo", "id": "x", "pcf.dqi.temporalDQR": "0"})
    with pytest.raises(FootprintRefused) as caught:
        parse_footprints([footprint(), footprint(), footprint(), bad, footprint(status="x")])
    error = caught.value
    assert sorted(error.refusals) == [3, 4]
    assert [path for path, _ in error.refusals[3]] == ["footprints[3].id",
                                                       "footprints[3].pcf.declaredUnitOfMeasurement"]
    text = str(error)
    assert text.startswith("footprints: 2 of 5 footprints refused; nothing was taken")
    assert "\n  footprints[3].pcf.declaredUnitOfMeasurement: 'kilo' is not one of liter, kilogram, " in text
    assert "\n  footprints[4].status: 'x' is not one of Active, Deprecated" in text
    assert isinstance(error, PactError) and isinstance(error, Scope3Error)
    assert (error.code, error.http_status, error.exit_code) == ("BadRequest", 400, 2)
    assert error.error_object() == {"code": "BadRequest", "message": text}
    missing = FootprintNotFound("00000000-0000-0000-0000-000000000000")
    assert (missing.http_status, missing.error_object()) == (404, {
        "code": "NotFound", "message": "no product footprint with id '00000000-0000-0000-0000-000000000000'"})


def test_something_else_than_a_list_of_footprints_is_refused() -> None:
    with pytest.raises(FootprintRefused, match=r"an object is not a JSON array of footprints"):
        parse_footprints(footprint(), source="file.json")


def test_what_the_methodology_asks_is_noted_without_refusing() -> None:
    fp = parse_footprint(footprint(**{"pcf.primaryDataShare": ..., "validityPeriodStart": "2024-06-01T00:00:00Z",
                                      "validityPeriodEnd": "2029-01-01T00:00:00Z"}))
    assert [path for path, _ in notes(fp)] == ["pcf.primaryDataShare", "validityPeriodStart", "validityPeriodEnd"]
    assert notes(parse_footprint(footprint())) == []


def test_the_default_validity_is_three_years_from_the_end_of_the_reference_period() -> None:
    fp = parse_footprint(footprint())
    assert fp.validity() == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    assert add_years(datetime(2024, 2, 29, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------ the filters


def _catalogue() -> list[ProductFootprint]:
    """Four footprints: different products, owners, geographies, classifications, statuses and validity."""
    return parse_footprints([
        footprint(),
        footprint(id="b1f8c0d2-7c4e-4e67-9a9c-2e4c12345678", productIds=["urn:gtin:1234567890123"],
                  companyIds=["urn:pact:ethanol-works.example:company-id:1", "urn:pact:other.example:company-id:9"],
                  validityPeriodStart="2025-06-01T00:00:00Z", validityPeriodEnd="2026-06-01T00:00:00Z",
                  **{"pcf.geographyCountry": ..., "pcf.geographyRegionOrSubregion": "Western Europe"}),
        footprint(id="c2e9d1f3-8d5f-4f78-9b0d-3f5e23456789", status="Deprecated", productClassifications=...,
                  companyIds=["urn:pact:other.example:company-id:9"],
                  **{"pcf.geographyCountry": ..., "pcf.geographyCountrySubdivision": "DE-BW"}),
        footprint(id="d3f0e2a4-9e6f-4a89-8c2d-4f6a78901234", productIds=["urn:gtin:1234567890123"],
                  **{"pcf.geographyCountry": ...}),  # global
    ])  # fmt: skip


def _ids(query: list[tuple[str, str]]) -> list[str]:
    return [fp.id[:2] for fp in filters.select(_catalogue(), filters.FootprintFilter.from_query(query))]


def test_values_of_one_parameter_are_ored_and_parameters_anded() -> None:
    assert _ids([("productId", "urn:gtin:4712345060507"), ("productId", "urn:gtin:1234567890123")]) == [
        "3a", "b1", "c2", "d3"]
    assert _ids([("productId", "urn:gtin:1234567890123"), ("geography", "Western Europe")]) == ["b1"]
    assert _ids([("companyId", "urn:pact:other.example:company-id:9"), ("status", "Active")]) == ["b1"]
    assert _ids([("companyId", "urn:pact:other.example:company-id:9"), ("companyId", "urn:bogus:company:x")]) == [
        "b1", "c2"]  # conformance test case 29


def test_values_and_parameter_names_are_matched_whatever_their_case() -> None:
    assert _ids([("productid", "URN:GTIN:1234567890123"), ("STATUS", "active")]) == ["b1", "d3"]
    assert _ids([("Classification", "urn:pact:CAS.org:substance-number:64-17-5"), ("geography", "de")]) == ["3a"]
    assert _ids([("validon", "2025-04-01T00:00Z")]) == ["3a", "c2", "d3"]  # the spec's own example spelling


def test_geography_is_a_region_a_country_or_a_subdivision_exactly() -> None:
    assert _ids([("geography", "DE")]) == ["3a"]
    assert _ids([("geography", "de-bw")]) == ["c2"]
    assert _ids([("geography", "western europe")]) == ["b1"]


def test_validity_filters_follow_the_spec_with_the_default_period() -> None:
    # 3a, c2, d3: 2025-01-01 to 2028-01-01 by default; b1: 2025-06-01 to 2026-06-01.
    assert _ids([("validOn", "2025-01-01T00:00:00Z")]) == ["3a", "c2", "d3"]  # start <= validOn
    assert _ids([("validOn", "2028-01-01T00:00:00Z")]) == ["3a", "c2", "d3"]  # validOn <= end
    assert _ids([("validOn", "2026-01-01")]) == ["3a", "b1", "c2", "d3"]
    assert _ids([("validAfter", "2025-01-01T00:00:00Z")]) == ["b1"]  # start > validAfter
    assert _ids([("validBefore", "2028-01-01T00:00:00Z")]) == ["b1"]  # end < validBefore
    assert _ids([("validBefore", "2028-01-01T00:00:01Z")]) == ["3a", "b1", "c2", "d3"]


@pytest.mark.parametrize("query", [
    [("productId", "urn:bogus:product:abc")], [("companyId", "urn:bogus:company:abc")], [("geography", "XX")],
    [("classification", "urn:bogus:classification:abc")], [("validOn", "1900-01-01T00:00:00Z")],
    [("validAfter", "2099-12-31T23:59:59Z")], [("validBefore", "1900-01-01T00:00:00Z")], [("status", "BogusStatus")],
    [("companyId", "urn:bogus:company:a"), ("productId", "urn:gtin:4712345060507")],
    [("companyId", "urn:bogus:company:a"), ("companyId", "urn:bogus:company:b")],
])  # fmt: skip
def test_a_value_nothing_has_selects_nothing_rather_than_failing(query: list[tuple[str, str]]) -> None:
    # Conformance test cases 30 to 39: 200 with {"data": []}.
    assert _ids(query) == []


def test_an_empty_value_is_no_criterion() -> None:
    # Conformance test cases 22 and 23 send ?geography= and ?classification= when the first footprint has none.
    assert _ids([("geography", "")]) == ["3a", "b1", "c2", "d3"]
    assert _ids([("classification", ""), ("validOn", " ")]) == ["3a", "b1", "c2", "d3"]


def test_other_parameters_are_not_filters() -> None:
    assert _ids([("limit", "1"), ("offset", "2"), ("x-atq-invoice-id", "12345")]) == ["3a", "b1", "c2", "d3"]
    assert filters.FootprintFilter.from_query([("limit", "1")]).is_empty()


def test_a_date_that_is_not_a_date_is_a_bad_request() -> None:
    with pytest.raises(InvalidFilter, match=r"validAfter: 'yesterday' is not a date-time"):
        filters.FootprintFilter.from_query([("validAfter", "yesterday")])
    with pytest.raises(InvalidFilter, match=r"validOn is given 2 times; give it once"):
        filters.FootprintFilter.from_query([("validOn", "2025-01-01"), ("validOn", "2026-01-01")])
    assert InvalidFilter("x").http_status == 400


def test_an_unencoded_plus_of_a_time_zone_is_read_as_a_plus() -> None:
    flt = filters.FootprintFilter.from_query([("validOn", "2025-01-01T01:00:00 01:00")])
    assert flt.validOn == datetime(2025, 1, 1, tzinfo=UTC)


def test_the_filter_runs_on_a_frame_with_its_own_index() -> None:
    frame = filters.footprint_frame(_catalogue())
    frame.index = pd.Index([10, 20, 30, 40])
    keep = filters.mask(frame, filters.FootprintFilter(productId=("urn:gtin:1234567890123",)))
    assert keep.to_dict() == {10: False, 20: True, 30: False, 40: True}
    assert filters.select([], filters.FootprintFilter(status=("Active",))) == []


def test_a_filter_gives_back_its_query_for_the_next_page() -> None:
    query = [("productId", "urn:gtin:1"), ("productId", "urn:gtin:2"), ("validOn", "2025-01-01T00:00:00Z")]
    assert filters.FootprintFilter.from_query(query).to_query() == query


# ------------------------------------------------------------------------------------------------ the events

CE = "application/cloudevents+json; charset=UTF-8"


def _event(event_type: str, data: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"type": event_type, "specversion": "1.0", "id": "run-1/12", "source": "https://recipient.example/3/events",
            "time": "2025-03-05T17:31:00.123Z", "data": data, **envelope}


def _refused(body: Any, content_type: str | None = CE) -> list[tuple[str, str]]:
    with pytest.raises(EventRefused) as caught:
        events.parse_event(json.dumps(body) if isinstance(body, dict) else body, content_type)
    assert caught.value.http_status == 400
    return caught.value.problems


def test_a_request_for_footprints_is_read_as_the_list_filter() -> None:
    body = json.dumps(_event(events.REQUEST_CREATED, {"productId": ["urn:gtin:1234567890123"], "status": "Active",
                                                      "comment": "Please send PCF data for this year."}))
    event = events.parse_event(body.encode(), CE)
    assert isinstance(event, events.RequestCreatedEvent)
    assert [fp.id[:2] for fp in filters.select(_catalogue(), event.data.to_filter())] == ["b1", "d3"]
    # Conformance test case 14.A: an unknown product is accepted now and rejected later by event.
    unknown = events.parse_event(_event(events.REQUEST_CREATED, {"productId": ["urn:pact:null"]}), None)
    assert isinstance(unknown, events.RequestCreatedEvent)
    assert filters.select(_catalogue(), unknown.data.to_filter()) == []


def test_fulfilled_rejected_and_published_events_are_read() -> None:
    fulfilled = events.parse_event(_event(events.REQUEST_FULFILLED, {"requestEventId": "run-1/12",
                                                                     "pfs": [footprint()]}), CE)
    assert isinstance(fulfilled, events.RequestFulfilledEvent) and fulfilled.data.pfs[0].id == FIRST
    rejected = events.parse_event(_event(events.REQUEST_REJECTED, {"requestEventId": "run-1/14.A", "error": {
        "code": "NotFound", "message": "no footprint of urn:pact:null"}}), CE)
    assert isinstance(rejected, events.RequestRejectedEvent) and rejected.data.error.code == "NotFound"
    published = events.parse_event(_event(events.PUBLISHED, {"pfIds": [FIRST]}), CE)  # conformance test case 15
    assert isinstance(published, events.PublishedEvent) and published.data.pfIds == [FIRST]


@pytest.mark.parametrize(("body", "problems"), [
    (_event(events.PUBLISHED, {"pfIds": ["urn:gtin:4712345060507"]}),  # conformance test case 40
     [("data.pfIds[0]", "'urn:gtin:4712345060507' is not a UUID, e.g. \"f4b1225a-bd44-4c8e-861d-079e4e1dfd69\"")]),
    (_event(events.PUBLISHED, {"pfIds": []}), [("data.pfIds", "is an empty list: give at least one value, or leave "
                                                              "the property out where it is optional")]),
    (_event("org.wbcsd.pact.ProductFootprint.DeletedEvent.3", {}),
     [("type", "'org.wbcsd.pact.ProductFootprint.DeletedEvent.3' is not one of "
               "org.wbcsd.pact.ProductFootprint.RequestCreatedEvent.3, "
               "org.wbcsd.pact.ProductFootprint.RequestFulfilledEvent.3, "
               "org.wbcsd.pact.ProductFootprint.RequestRejectedEvent.3, "
               "org.wbcsd.pact.ProductFootprint.PublishedEvent.3")]),
    (_event(events.PUBLISHED, {"pfIds": [FIRST]}, specversion="0.3", time=None, id=""),
     [("specversion", "'0.3' is not \"1.0\": PACT v3 events are CloudEvents 1.0"), ("id", "must not be empty"),
      ("time", "is missing (required)")]),
    (_event(events.REQUEST_CREATED, {"comment": "anything?"}),
     [("data", "gives no criteria: name the footprints wanted by one of productId, companyId, geography, "
               "classification, validOn, validAfter, validBefore, status")]),
    (_event(events.REQUEST_CREATED, {"productId": "urn:gtin:1"}),
     [("data.productId", "'urn:gtin:1' is not a list ([...])")]),
    (_event(events.REQUEST_FULFILLED, {"requestEventId": "r", "pfs": []}),
     [("data.pfs", "is an empty list: give at least one value, or leave the property out where it is optional")]),
    (_event(events.REQUEST_FULFILLED, {"requestEventId": "r", "pfs": [footprint(**{"pcf.declaredUnitAmount": "-1"})]}),
     [("data.pfs[0].pcf.declaredUnitAmount", "'-1' must be greater than 0")]),
    (_event(events.REQUEST_FULFILLED, {"requestEventId": "r", "pfs": [footprint(**{"pcf.dqi.temporalDQR": "9"})]}),
     [("data.pfs[0].pcf.dqi.temporalDQR", "'9' is not a rating between 1 and 5")]),
    (_event(events.REQUEST_REJECTED, {"requestEventId": "r", "error": {"code": "Gone", "message": "x"}}),
     [("data.error.code", "'Gone' is not one of BadRequest, AccessDenied, TokenExpired, NotFound, InternalError, "
                          "NotImplemented")]),
    ("{not json", [("(body)", "is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                              "(char 1)")]),
    ("[1, 2]", [("(body)", "a list is not a JSON object (a CloudEvent)")]),
])  # fmt: skip
def test_an_invalid_event_is_refused_with_where_and_why(body: Any, problems: list[tuple[str, str]]) -> None:
    assert _refused(body) == problems


def test_an_event_not_in_structured_mode_is_refused() -> None:
    body = json.dumps(_event(events.PUBLISHED, {"pfIds": [FIRST]}))
    assert _refused(body, "application/json") == [
        ("Content-Type", "'application/json' is not application/cloudevents+json: PACT events are CloudEvents in "
                         "structured mode, the whole event as the JSON body")]


def test_the_events_we_send_are_valid_pact_events() -> None:
    source = "//scope3.example/pact/3/events"
    criteria = filters.FootprintFilter.from_query([("productId", "urn:gtin:1"), ("status", "active"),
                                                   ("validAfter", "2025-01-01T00:00:00+01:00")])
    created = events.request_created(source, criteria, comment="PCF for 2025, please")
    assert created["data"] == {"productId": ["urn:gtin:1"], "validAfter": "2024-12-31T23:00:00Z", "status": "Active",
                               "comment": "PCF for 2025, please"}
    fp = parse_footprint(footprint())
    sent = [created, events.request_fulfilled(source, created["id"], [fp]),
            events.request_rejected(source, created["id"], "NotFound", "no footprint of urn:gtin:1"),
            events.published(source, [FIRST])]
    for body in sent:
        assert events.parse_event(json.dumps(body), events.MEDIA_TYPE).type == body["type"]
    assert len({body["id"] for body in sent}) == 4
    with pytest.raises(ValueError, match="send request_rejected instead"):
        events.request_fulfilled(source, created["id"], [])


# ------------------------------------------------------------------------------------------------ the units


def _pcf(**changes: Any) -> ProductFootprint:
    return parse_footprint(footprint(**{f"pcf.{k}": v for k, v in changes.items()}))


def test_a_purchase_is_converted_to_the_declared_unit() -> None:
    ethanol = _pcf(declaredUnitAmount="12.5").pcf  # 1.85 kgCO2e per 12.5 liter, 0.789 kg per 12.5 liter
    assert units.declared_units_per("litre", ethanol) == pytest.approx(0.08)
    assert units.declared_units_per("m3", ethanol) == pytest.approx(80)
    assert units.declared_units_per("t", ethanol) == pytest.approx(1000 / 0.789)  # by the mass per declared unit
    assert units.emissions_per("l", ethanol) == pytest.approx(1.85 / 12.5)
    assert units.emissions_per("l", ethanol, including_biogenic_uptake=True) == pytest.approx(0.35 / 12.5)
    lines = units.purchase_emissions(pd.Series([25, 2]), pd.Series(["l", "l"]), ethanol)
    assert lines.tolist() == pytest.approx([25 * 1.85 / 12.5, 2 * 1.85 / 12.5])


def test_declared_units_of_transport_and_pieces() -> None:
    freight = _pcf(declaredUnitOfMeasurement="ton kilometer", productMassPerDeclaredUnit="0").pcf
    assert units.declared_units_per("t.km", freight) == pytest.approx(1.0)  # a metric tonne, not a short ton
    parts = _pcf(declaredUnitOfMeasurement="piece", declaredUnitAmount="100", productMassPerDeclaredUnit="5").pcf
    assert units.declared_units_per("pcs", parts) == pytest.approx(0.01)
    assert units.declared_units_per("kg", parts) == pytest.approx(0.2)


def test_of_several_matching_footprints_one_order_chooses_the_one_that_prices_a_purchase() -> None:
    def approved(n: int, submission: int, created: str, product: str) -> pcf_pricing.Approved:
        fp = parse_footprint(footprint(id=f"00000000-0000-4000-8000-00000000000{n}", created=created,
                                       productIds=[product]))
        return pcf_pricing.Approved(submission, 7, fp)

    def winner(candidates: list[pcf_pricing.Approved]) -> set[str]:
        lines = pd.DataFrame({"posting_date": pd.to_datetime(["2025-03-10"]), "vendor_key": ["v7"],
                              "vendor_name": ["Ethanol Works"], "supplier_id": [7], "category": [1],
                              "currency": ["EUR"], "amount": [100.0], "product_id": ["URN:GTIN:4712345060507"],
                              "quantity": [10.0], "unit": ["l"]})
        return {str(pcf_pricing.price_lines(lines, order)[0]["factor_key"].iloc[0])
                for order in itertools.permutations(candidates)}  # whatever order they are read in

    exact_old = approved(1, 3, "2025-02-01T00:00:00Z", "urn:gtin:4712345060507")
    by_last_part_new = approved(2, 2, "2025-03-01T00:00:00Z", "urn:pact:other.example:product-id:4712345060507")
    exact_new = approved(3, 2, "2025-03-01T00:00:00Z", "urn:gtin:4712345060507")
    assert pcf_pricing.product_keys(" URN:GTIN:47 ") == ("urn:gtin:47", "47")
    assert pcf_pricing.product_keys("47") == ("47",) and pcf_pricing.product_keys(" ") == ()
    assert winner([exact_old, by_last_part_new]) == {by_last_part_new.footprint.id}  # the most recently created
    assert winner([exact_old, by_last_part_new, exact_new]) == {exact_new.footprint.id}  # then the greater id
    later = approved(1, 4, "2025-03-01T00:00:00Z", "urn:gtin:4712345060507")
    assert winner([later, by_last_part_new, exact_new]) == {later.footprint.id}  # then the later submission


def test_a_unit_that_does_not_convert_is_refused_with_what_to_do() -> None:
    energy = _pcf(declaredUnitOfMeasurement="kilowatt hour", productMassPerDeclaredUnit="0").pcf
    with pytest.raises(UnitNotConvertible, match=r"a purchase in 'kg' \(a mass\) cannot be priced by a footprint "
                                                 r"declared per 1 kilowatt hour .*record the purchase in kilowatt"):
        units.declared_units_per("kg", energy)
    with pytest.raises(UnitNotConvertible, match=r"a purchase in 'pcs' cannot be priced .* record the purchase in "
                                                 r"liters or kilograms"):
        units.declared_units_per("pcs", _pcf().pcf)



# ------------------------------------------------------------------------------------------------ pagination


def test_a_page_never_holds_more_than_the_limit_and_says_where_the_next_starts() -> None:
    items = list(range(5))
    assert pages.page(items, 2, 0) == ([0, 1], 2)
    assert pages.page(items, 2, 4) == ([4], None)
    assert pages.page(items, None, 0, max_page=3) == ([0, 1, 2], 3)
    assert pages.page(items, 10, 0, max_page=3) == ([0, 1, 2], 3)
    assert pages.page(items, 0, 0) == ([], None)  # a link to the same empty page would never end
    assert pages.page(items, 2, 9) == ([], None)


def test_the_next_link_is_the_request_with_its_filters_and_a_new_offset() -> None:
    # Conformance test case 5 takes the link of ?limit=1, cuts the base URL and calls the rest.
    base = "https://pact.example:8443/pact"
    request = f"{base}/3/footprints?productId=urn:gtin:1&productId=urn:gtin:2&limit=1&offset=1"
    link = pages.next_link(request, offset=2)
    assert link == (f"<{base}/3/footprints?productId=urn%3Agtin%3A1&productId=urn%3Agtin%3A2&limit=1&offset=2>; "
                    'rel="next"')
    target = link[1:link.index(">")]
    assert target.startswith(base + "/3/footprints?")
    params = parse_qsl(urlsplit(target).query)
    assert filters.FootprintFilter.from_query(params) == filters.FootprintFilter.from_query(parse_qsl(
        urlsplit(request).query))
    assert pagination.paging(params) == (1, 2)


def test_the_next_link_replaces_only_the_paging_parameters_in_any_letter_case() -> None:
    # The REST API's cursor links are built the same way (limit first, as docs/api.md shows).
    url = "https://hub.example/services/api/suppliers?Cursor=WzFd&q=a%20b&flag=&limit=5"
    assert pages.next_link(url, limit=5, cursor="WzJd") == (
        '<https://hub.example/services/api/suppliers?q=a+b&flag=&limit=5&cursor=WzJd>; rel="next"')
    assert pages.next_link("https://h.example/x", offset=3) == '<https://h.example/x?offset=3>; rel="next"'


def test_a_limit_or_offset_that_is_not_a_count_is_a_bad_request() -> None:
    assert pagination.paging([("productId", "x")]) == (None, 0)
    for name, value in (("limit", "-1"), ("offset", "ten"), ("LIMIT", "1.5")):
        with pytest.raises(InvalidFilter, match=rf"{name}: '{value}' is not a whole number of 0 or more"):
            pagination.paging([(name, value)])
