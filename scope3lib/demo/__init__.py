"""Demo tenants: generated suppliers, a year of emission entries and meters, loaded into empty tenants."""

from .data import COUNTRIES, DEMO_TENANTS, SECTORS, DemoData, DemoProfile, generate, load

__all__ = ["COUNTRIES", "DEMO_TENANTS", "SECTORS", "DemoData", "DemoProfile", "generate", "load"]
