"""One base exception for the platform, with subclasses named after what went wrong.

Every error carries a message that says what is wrong and, where there is one, how to fix it.
The CLI turns a :class:`Scope3Error` into a one-line message and exit code 1; nothing a user
types should ever surface as a traceback.
"""

from __future__ import annotations


class Scope3Error(Exception):
    """Base class of every error the platform raises on purpose."""

    exit_code = 1


class ConfigurationError(Scope3Error):
    """A setting is missing or invalid (environment variable, config file)."""


class DatabaseUnavailable(Scope3Error):
    """PostgreSQL cannot be reached or started."""


class UnknownTenant(Scope3Error):
    def __init__(self, slug: str) -> None:
        super().__init__(f"unknown tenant {slug!r} (see `scope3 tenant list`)")
        self.slug = slug


class DuplicateTenant(Scope3Error):
    def __init__(self, slug: str) -> None:
        super().__init__(f"tenant {slug!r} already exists")
        self.slug = slug


class InvalidArgument(Scope3Error):
    """A value given by the user is malformed (slug, role, username, region...)."""

    exit_code = 2


class PlanLimitExceeded(Scope3Error):
    """A tenant's plan does not allow one more user, device or supplier."""

    def __init__(self, slug: str, plan: str, what: str, limit: int) -> None:
        super().__init__(
            f"tenant {slug!r} is on the {plan} plan, which allows {limit} {what}; "
            f"upgrade with `scope3 tenant set-plan {slug} PLAN`"
        )
        self.slug, self.plan, self.what, self.limit = slug, plan, what, limit


class DuplicateUser(Scope3Error):
    pass


class DuplicateDevice(Scope3Error):
    pass


class UnknownDevice(Scope3Error):
    pass


class UnknownSupplier(Scope3Error):
    pass


class InvalidReading(Scope3Error):
    """A meter message that cannot be stored; ``reason`` is what the rejects table records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerUnavailable(Scope3Error):
    """The MQTT broker cannot be reached or started."""


class FactorFileError(Scope3Error):
    """An official emission-factor file that cannot be read as its publisher's format."""
