"""What a demo tenant shows on its first page: ML estimates in use, a stored scenario, a signed checkpoint.

Each step runs through the platform's own path, as an analyst or an operator would: the nightly estimates
batch with the tenant's role, a scenario saved by the tenant, a checkpoint signed with the tenant's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from .. import db, scenarios, tenancy
from ..ledger import log as ledger_log
from ..ml import estimates

#: The demo's reduction plan: the example of docs/scenarios.md, on the categories every demo tenant has.
DEMO_SCENARIO: dict[str, Any] = {
    "name": "2030-plan", "base_year": 2025, "target_year": 2030, "growth": 0.03, "discount_rate": 0.08,
    "levers": [
        {"kind": "energy_efficiency", "category": 1, "reduction": 0.05, "implementation_cost": 2_000_000,
         "annual_saving": 300_000, "start_year": 2026},
        {"kind": "transport_mode_shift", "category": 4, "to_mode": "rail", "share": 0.3, "road_factor": 0.107,
         "to_factor": 0.028, "implementation_cost": 100_000, "start_year": 2026},
        {"kind": "spend_reduction", "category": 6, "reduction": 0.2, "start_year": 2026},
        {"kind": "supplier_engagement", "share": 0.3, "reduction": 0.15, "implementation_cost": 500_000,
         "annual_saving": -100_000, "start_year": 2027},
    ],
}


@dataclass(frozen=True)
class Showcase:
    estimates: str  # what the estimates batch did, in words
    scenario: str
    checkpoint_size: int


def showcase(admin: Engine, data_dir: Path, slug: str) -> Showcase:
    """Estimate the non-reporting suppliers, save the demo scenario and sign a checkpoint, for tenant ``slug``."""
    tenant = db.connect(tenancy.tenant_credentials(data_dir, slug).database_url)
    try:
        batch = estimates.batch_estimates(tenant, data_dir, slug, retrain=True)
        scenario = scenarios.parse(DEMO_SCENARIO)
        scenarios.save(tenant, scenario, replace=True)
    finally:
        tenant.dispose()
    signed = ledger_log.checkpoint(admin, data_dir, slug)
    return Showcase(batch.inventory.sentence(), scenario.name, signed.checkpoint.tree_size)
