"""scope3lib: the shared library of the Scope 3 platform."""
