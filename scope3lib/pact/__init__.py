"""PACT v3 product-footprint exchange, without a database: the ProductFootprint model and its validation
(:mod:`.model`), the list filters and pages of ``GET /3/footprints`` (:mod:`.filters`, :mod:`.pagination`),
the CloudEvents of ``POST /3/events`` (:mod:`.events`) and purchase quantities in a footprint's declared
unit (:mod:`.units`).

Implements the PACT Technical Specifications for PCF Data Exchange v3.0 of the World Business Council for
Sustainable Development (WBCSD); see NOTICE and docs/pact.md.
"""
