"""A company's own data: its supplier records, ERP spend extracts, classification and supplier-reported figures.

- :mod:`.records`: the supplier records (the one writer of ``suppliers``), with history;
- :mod:`.identifiers`: normalised names, LEI, DUNS and VAT numbers;
- :mod:`.extracts`: ERP extracts read through a saved column mapping;
- :mod:`.matching`: vendors to suppliers; :mod:`.classification`: lines to categories and sectors;
- :mod:`.pricing`: groups of lines priced by the calculation engine; :mod:`.spend`: imports and review;
- :mod:`.disclosures`: what suppliers report; :mod:`.coverage`: how much of the spend is classified,
  matched and covered by supplier data.

In a notebook: ``from scope3lib.suppliers import records, spend``.
"""
