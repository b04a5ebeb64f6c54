"""Carbon accounting: calculation methods, currencies and units, data quality, uncertainty, the inventory."""
