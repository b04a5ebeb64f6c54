"""Request rate per principal (API key or hub user), set by the tenant's plan: a token bucket in the service.

Each principal may make ``rate`` requests a second on average and ``burst`` at once; a request beyond that
is answered 429 with ``Retry-After`` (whole seconds until it would be allowed). The buckets live in the
service process: one API process per tenant (docs/api.md), so no shared store is needed.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from ..models import Plan


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


#: Requests per second and burst per principal, by plan.
PLAN_RATES: dict[str, Rate] = {
    Plan.FREE.value: Rate(5, 20),
    Plan.STARTER.value: Rate(20, 60),
    Plan.PROFESSIONAL.value: Rate(200, 400),
    Plan.ENTERPRISE.value: Rate(1000, 2000),
}


class RateLimiter:
    def __init__(self, rate: Rate, plan: str = "") -> None:
        self.rate, self.plan = rate, plan
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # principal -> (tokens, at)

    def take(self, principal: str) -> float:
        """Take one request for ``principal``: 0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        rate = self.rate
        with self._lock:
            tokens, at = self._buckets.get(principal, (float(rate.burst), now))
            tokens = min(float(rate.burst), tokens + (now - at) * rate.per_second)
            if tokens >= 1:
                self._buckets[principal] = (tokens - 1, now)
                return 0.0
            self._buckets[principal] = (tokens, now)
            return (1 - tokens) / rate.per_second


def retry_after(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
