"""Benchmark: PACT v3 footprints validated, served back as JSON, and filtered as GET /3/footprints does.

    .venv/bin/python bench/pact.py [--footprints 10000]

A batch of distinct valid footprints (shaped like the spec's example, one product each, a third deprecated,
geographies spread over three countries) is validated all or nothing (``parse_footprints``), turned back
into the spec's JSON (``to_json``), and filtered by a query of two product ids, a country and a date, with
and without building the frame first. One footprint with a wrong unit is then appended, to time a refusal
of the whole batch. No database.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from scope3lib.errors import FootprintRefused
from scope3lib.pact.filters import FootprintFilter, footprint_frame, mask, select
from scope3lib.pact.model import parse_footprints


def _footprint(i: int) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=i + 1)), "specVersion": "3.0.3", "created": "2025-02-01T08:00:00Z",
        "status": "Deprecated" if i % 3 == 0 else "Active", "companyName": "Bench Works",
        "companyIds": [f"urn:pact:bench.example:company-id:{i % 50}"], "productDescription": "bench product",
        "productIds": [f"urn:gtin:{i:013d}"], "productNameCompany": f"Product {i}",
        "pcf": {
            "declaredUnitOfMeasurement": "kilogram", "declaredUnitAmount": "1", "productMassPerDeclaredUnit": "1",
            "referencePeriodStart": "2024-01-01T00:00:00Z", "referencePeriodEnd": "2025-01-01T00:00:00Z",
            "geographyCountry": ("DE", "FR", "NL")[i % 3], "pcfExcludingBiogenicUptake": f"{1 + i % 7}.25",
            "pcfIncludingBiogenicUptake": f"{i % 7}.5", "fossilGhgEmissions": "1.0", "fossilCarbonContent": "0",
            "ipccCharacterizationFactors": ["AR6"], "crossSectoralStandards": ["ISO14067", "PACT-3.0"],
            "exemptedEmissionsPercent": "0", "primaryDataShare": "40",
            "dqi": {"technologicalDQR": "2", "geographicalDQR": "2", "temporalDQR": "2"},
        },
    }  # fmt: skip


def _timed(label: str, work: Any) -> Any:
    started = time.perf_counter()
    result = work()
    print(f"  {label:<44} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--footprints", type=int, default=10_000)
    n = parser.parse_args().footprints
    items = [_footprint(i) for i in range(n)]
    print(f"{n:,} footprints")
    footprints = _timed("validate (parse_footprints)", lambda: parse_footprints(items))
    _timed("serve back (to_json)", lambda: [fp.to_json() for fp in footprints])
    query = FootprintFilter.from_query([("productId", "urn:gtin:0000000000042"),
                                        ("productId", f"urn:gtin:{n - 1:013d}"), ("geography", "de"),
                                        ("validOn", "2026-01-01T00:00:00Z")])
    selected = _timed("filter a list (select, frame included)", lambda: select(footprints, query))
    frame = _timed("build the frame (footprint_frame)", lambda: footprint_frame(footprints))
    kept = _timed("filter the frame (mask)", lambda: mask(frame, query))
    print(f"  selected {len(selected)} footprints (frame: {int(kept.sum())})")
    bad = [*items, {**items[0], "pcf": {**items[0]["pcf"], "declaredUnitOfMeasurement": "kilo"}}]
    started = time.perf_counter()
    try:
        parse_footprints(bad)
    except FootprintRefused as error:
        print(f"  {'refuse the batch with one bad footprint':<44} {time.perf_counter() - started:8.3f} s "
              f"({len(error.refusals)} refused: {error.problems[0][0]})")


if __name__ == "__main__":
    main()
