"""Errors as RFC 9457 problem details (``application/problem+json``), naming the field at fault.

Every refusal of the API is a :class:`Problem`; the platform's own errors (:class:`~scope3lib.errors.Scope3Error`)
keep their message, which says what is wrong and how to fix it. A server error says only that it happened
(the traceback goes to the service's log, never to a client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors
from .keys import UnknownKey

log = logging.getLogger("scope3.api")

MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where: 'body.rows[3].unit', 'query.limit', 'path.supplier_id'.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="The fields at fault, when there are any.")


class ApiProblem(Exception):
    """Raise to answer with a problem; ``field`` names the one field at fault, when there is one."""

    def __init__(self, status: int, title: str, detail: str | None = None, *, field: str | None = None,
                 errors: list[FieldError] | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or ([FieldError(field=field, message=detail or title)] if field else None)
        self.headers = dict(headers or {})


def problem_response(status: int, title: str, detail: str | None = None, errors: list[FieldError] | None = None,
                     headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


#: The problem documented for every route (schemathesis checks responses against it).
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": title, "content": {MEDIA_TYPE: {}}}
    for status, title in ((400, "Bad request"), (401, "Not authenticated"), (403, "Not allowed"),
                          (404, "Not found"), (409, "Conflict"), (413, "Payload too large"),
                          (422, "Invalid input"), (429, "Too many requests"),
                          (500, "Server error"), (503, "Database unavailable"))
}

def document(doc: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every problem response as ``application/problem+json`` of :class:`Problem`
    only (FastAPI lists a model's schema under ``application/json``)."""
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if MEDIA_TYPE in content:
                    content.pop("application/json", None)
                    content[MEDIA_TYPE] = {"schema": ref}
    return doc


_STATUS_OF: tuple[tuple[type[Exception], int, str], ...] = (
    (errors.UnknownTenant, 404, "Unknown tenant"),
    (errors.UnknownDevice, 404, "Unknown device"),
    (UnknownKey, 404, "Unknown API key"),
    (errors.UnknownSupplier, 422, "Unknown supplier"),
    (errors.ModelNotFound, 409, "No trained model"),
    (errors.DuplicateDevice, 409, "Already exists"),
    (errors.PlanLimitExceeded, 409, "Plan limit"),
    (errors.PeriodError, 409, "Closed period"),
    (errors.LedgerError, 409, "Ledger"),
    (errors.InvalidArgument, 422, "Invalid input"),
    (errors.InvalidLever, 422, "Invalid input"),
    (errors.ScenarioError, 409, "Scenario"),
    (errors.Scope3Error, 422, "Refused"),
)


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = [FieldError(field=_location(tuple(e.get("loc", ()))), message=str(e.get("msg", "invalid")))
                 for e in exc.errors()]
        detail = "; ".join(f"{f.field}: {f.message}" for f in found[:5])
        return problem_response(422, "Invalid input", detail, found)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed"}
        return problem_response(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(errors.Scope3Error)
    async def _platform(request: Request, exc: errors.Scope3Error) -> JSONResponse:
        for cls, status, title in _STATUS_OF:
            if isinstance(exc, cls):
                found = None
                if isinstance(exc, errors.ActivityImportError):  # line 2 is the first row
                    found = [FieldError(field=f"body.rows[{line - 2}]", message=reason)
                             for line, reason in exc.problems]
                return problem_response(status, title, str(exc), found)
        raise exc  # pragma: no cover - Scope3Error is the last entry

    @app.exception_handler(sa.exc.IntegrityError)
    async def _conflict(request: Request, exc: sa.exc.IntegrityError) -> JSONResponse:
        first = str(getattr(exc, "orig", exc)).splitlines()[0]
        return problem_response(409, "Conflict", f"the database refused the change: {first}")

    @app.exception_handler(sa.exc.DataError)
    async def _bad_value(request: Request, exc: sa.exc.DataError) -> JSONResponse:
        # A value PostgreSQL cannot store or compare (a NUL character in text, a number out of its range):
        # the request's fault, said in the database's words.
        first = str(getattr(exc, "orig", exc)).splitlines()[0]
        return problem_response(422, "Invalid input", f"a value in the request cannot be used: {first}")

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, str(exc).splitlines()[:1])
        return problem_response(503, "Database unavailable", "the tenant's database cannot be reached; nothing was "
                                "changed: retry after the Retry-After seconds", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "Server error", "the service failed; the operator's log has the details")
