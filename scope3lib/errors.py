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


class SchemaNotReady(ConfigurationError):
    """The database is empty or migrated to another version than this one's."""


class UnknownTenant(Scope3Error):
    def __init__(self, slug: str, where: str = "") -> None:
        super().__init__(f"unknown tenant {slug!r}{' ' + where if where else ''} (see `scope3 tenant list`)")
        self.slug = slug


class DuplicateTenant(Scope3Error):
    def __init__(self, slug: str) -> None:
        super().__init__(f"tenant {slug!r} already exists")
        self.slug = slug


class InvalidArgument(Scope3Error):
    """A value given by the user is malformed (slug, role, username, region...)."""

    exit_code = 2


class FileFormatError(InvalidArgument):
    """A file a user gave that cannot be read as what it should be (CSV, Excel), with where and why."""


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


class ActivityImportError(Scope3Error):
    """An activity file with bad rows; nothing was imported. ``problems`` is ``[(line, reason), ...]``."""

    def __init__(self, source: str, problems: list[tuple[int, str]], total: int) -> None:
        lines = "\n".join(f"  line {line}: {reason}" for line, reason in problems)
        super().__init__(
            f"{source}: {len(problems)} of {total} rows refused; nothing was imported (fix them and import "
            f"the file again):\n{lines}"
        )
        self.source, self.problems, self.total = source, problems, total


class PeriodError(Scope3Error):
    """A reporting period that does not exist, overlaps another, or is closed."""


class LedgerError(Scope3Error):
    """The tamper-evident ledger cannot do what was asked (no checkpoint yet, key missing, unknown entry)."""


class LedgerInconsistent(LedgerError):
    """The tenant's log no longer matches what was recorded or signed; nothing is signed or proved over it."""


class InvalidCheckpoint(LedgerError):
    """A checkpoint that is malformed or whose signature does not verify with the trusted key."""


class InvalidProof(LedgerError):
    """An inclusion or consistency proof (or the entry file it is for) that does not verify."""


class EstimatorError(Scope3Error):
    """The supplier-intensity estimator cannot train or predict; the EEIO spend-based factors stay in force."""


class TooFewReportingSuppliers(EstimatorError):
    """Fewer suppliers with their own (supplier-specific) data than the estimator needs to train."""

    def __init__(self, found: int, needed: int) -> None:
        super().__init__(
            f"only {found} suppliers report supplier-specific intensities; the estimator needs at least {needed} "
            "to train and to check itself by cross-validation; estimates stay on the EEIO spend-based factors "
            "(collect supplier data, then run `scope3 ml train` again)"
        )
        self.found, self.needed = found, needed


class UnknownSector(EstimatorError):
    """A supplier whose NAICS code has no EEIO factor, so neither the estimator nor the fallback applies."""

    def __init__(self, codes: list[str]) -> None:
        shown = ", ".join(codes[:5]) + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")
        super().__init__(
            f"NAICS code(s) {shown} have no EEIO factor (epa-useeio); set the supplier's naics_code to a 6-digit "
            "code of the factor table (`scope3 factors list epa-useeio`) or import the full EEIO dataset"
        )
        self.codes = codes


class ModelNotFound(Scope3Error):
    """No trained model in the tenant's model registry (or not the version asked for)."""


class ScenarioError(Scope3Error):
    """A reduction scenario that cannot be run or stored (no base-year inventory, unknown scenario name)."""


class InvalidLever(ScenarioError):
    """A scenario or lever whose inputs are refused (unknown supplier or category, a share over 100%, years
    out of order); the message names the lever and the fix."""

    exit_code = 2


class RowsRefused(Scope3Error):
    """A file (suppliers, an ERP extract, disclosures) with bad lines; nothing was written. ``problems`` is
    ``[(line, reason), ...]`` with the file's own line numbers (the header is line 1)."""

    def __init__(self, source: str, problems: list[tuple[int, str]], total: int, what: str = "rows",
                 fields: list[str] | None = None) -> None:
        shown = problems[:200]
        lines = "\n".join(f"  line {line}: {reason}" for line, reason in shown)
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(
            f"{source}: {len(problems)} of {total} {what} refused; nothing was imported (fix them and import "
            f"the file again):\n{lines}{more}"
        )
        self.source, self.problems, self.total = source, problems, total
        #: The field at fault of each problem, in the same order, when the reader knows it (an API names it).
        self.fields = fields


class SupplierError(Scope3Error):
    """A supplier record that cannot be created, changed, merged or archived as asked; the message says why.
    ``fields`` lists ``(field, reason)`` for each field at fault, when the refusal is about fields."""

    def __init__(self, message: str, fields: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []


class DuplicateSupplier(SupplierError):
    """Another record already stands for the same company (same identifier or the same normalised name)."""


class ExtractError(Scope3Error):
    """An ERP extract that cannot be imported as a whole: columns not found, a closed period, an overlap with
    lines already imported; the message says what to do."""


class ClassificationError(InvalidArgument):
    """A classification rule that is refused (unknown sector, a category without a spend-based method)."""


class PactError(Scope3Error):
    """A PACT product-footprint exchange that cannot go ahead.

    ``code`` and ``http_status`` are what a PACT host answers with (the spec's Error object: BadRequest,
    AccessDenied, TokenExpired, NotFound, InternalError, NotImplemented)."""

    code = "BadRequest"
    http_status = 400

    def error_object(self) -> dict[str, str]:
        """The spec's Error object, the body of the API's answer: ``{"code": "BadRequest", "message": ...}``."""
        return {"code": self.code, "message": str(self)}


class FootprintNotFound(PactError):
    """No product footprint with that id (``GET /3/footprints/{id}`` answers 404 NotFound)."""

    code = "NotFound"
    http_status = 404

    def __init__(self, footprint_id: str) -> None:
        super().__init__(f"no product footprint with id {footprint_id!r}")
        self.footprint_id = footprint_id


Problem = tuple[str, str]
"""``(path, message)``: where in the JSON a value is refused (``footprints[3].pcf.declaredUnitAmount``) and why."""


def _listing(problems: list[Problem]) -> str:
    return "\n".join(f"  {path}: {message}" for path, message in problems)


class FootprintRefused(PactError):
    """Product footprints that are not valid PACT v3; ``refusals`` maps each refused footprint's index to its
    problems, ``total`` is how many footprints were given. Nothing of the batch is used."""

    exit_code = 2

    def __init__(self, source: str, refusals: dict[int, list[Problem]], total: int) -> None:
        problems = [problem for index in sorted(refusals) for problem in refusals[index]]
        super().__init__(
            f"{source}: {len(refusals)} of {total} footprints refused; nothing was taken (fix them and send "
            f"them again):\n{_listing(problems)}"
        )
        self.source, self.refusals, self.total = source, refusals, total

    @property
    def problems(self) -> list[Problem]:
        return [problem for index in sorted(self.refusals) for problem in self.refusals[index]]


class EventRefused(PactError):
    """A CloudEvent sent to ``/3/events`` that is not a valid PACT v3 event; ``problems`` says where and why."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"event refused:\n{_listing(problems)}")
        self.problems = problems


class InvalidFilter(PactError):
    """A list-footprints query that cannot be read (a date that is not a date, a negative limit)."""

    exit_code = 2


class UnitNotConvertible(PactError):
    """A purchase quantity whose unit cannot be turned into a footprint's declared unit."""


class EngagementError(Scope3Error):
    """A data request, submission or decision that cannot go ahead as asked (unknown request, a decided
    submission, a decider who is not a user of the tenant); the message says why and what to do."""


class SelfApproval(EngagementError):
    """A user tried to decide on their own submission: a second user of the tenant must approve or reject it."""


class UploadRefused(EngagementError):
    """An upload with a supplier's token that is refused: ``http_status`` is 401 (no such token), 410 (expired,
    used up or withdrawn), 413 (too big), 415 (a kind of file the link does not take) or 422 (its content);
    ``problems`` lists ``(line or field, reason)`` for content refused line by line."""

    def __init__(self, message: str, http_status: int = 422, problems: list[tuple[str, str]] | None = None) -> None:
        listing = "".join(f"\n  {where}: {why}" for where, why in (problems or [])[:200])
        super().__init__(message + listing)
        self.http_status, self.problems = http_status, problems or []
