"""A supplier's upload link: what is asked, the template, and the upload itself, with the link's token and no API key.

``GET /engage/uploads/{token}`` says what is asked and until when; ``GET .../template?format=xlsx|csv`` gives
the spreadsheet; ``POST /engage/uploads/{token}`` takes PACT v3 footprints or a disclosure as JSON, or the filled
template (``text/csv`` or the .xlsx media type), and stores it as a *pending* submission
(:mod:`scope3lib.engagement.uploads`). Refusals are problem details whose status says what happened: 401 an
unknown token, 410 expired, used or replaced, 413 too big, 415 a kind of file not taken, 422 the content (with
``errors`` line by line). The request log keeps the route template, never the token.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..engagement import uploads
from ..errors import UploadRefused
from .context import ApiContext, context
from .problems import FieldError, problem_response

router = APIRouter(tags=["supplier uploads"])
Ctx = Annotated[ApiContext, Depends(context)]
MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # no link takes more (engage_max_upload_bytes' bound)


class Asked(BaseModel):
    supplier: str
    asked: Literal["pcf", "disclosure"]
    product_ids: list[str]
    year: int | None
    due_date: str
    link_expires_at: str
    uses_left: int
    max_bytes: int
    how: str


class Received(BaseModel):
    submission_id: int
    status: str
    payload_sha256: str
    message: str


def _refusal(exc: UploadRefused) -> JSONResponse:
    found = [FieldError(field=where, message=why) for where, why in exc.problems] or None
    first = str(exc).split("\n")[0]
    return problem_response(exc.http_status, {401: "Invalid link", 410: "Link no longer valid", 413: "Too large",
                                              415: "Unsupported content"}.get(exc.http_status, "Refused"),
                            first, found)


def _grant(ctx: ApiContext, token: str) -> uploads.Grant:
    with ctx.write.connect() as conn:
        return uploads.grant(conn, token)


@router.get("/engage/uploads/{token}", response_model=Asked)
def asked(token: str, ctx: Ctx) -> Any:
    """What the link asks for, from whom, by when, and how to answer."""
    try:
        g = _grant(ctx, token)
    except UploadRefused as exc:
        return _refusal(exc)
    return Asked(supplier=g.supplier, asked=g.kind, product_ids=g.product_ids, year=g.year,  # type: ignore[arg-type]
                 due_date=g.due_date.isoformat(), link_expires_at=g.expires_at.isoformat(), uses_left=g.uses_left,
                 max_bytes=g.max_bytes,
                 how="POST the filled template (GET .../template) as text/csv or .xlsx, or JSON "
                     '{"footprints": [PACT v3 ProductFootprints]} or {"disclosure": {...}}, to this URL')


@router.get("/engage/uploads/{token}/template")
def template(token: str, ctx: Ctx, format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx") -> Response:
    """The spreadsheet to fill in: one row per product asked (or one for the year)."""
    try:
        g = _grant(ctx, token)
    except UploadRefused as exc:
        return _refusal(exc)
    body = uploads.template(g.kind, g.product_ids, g.year, format)
    media = uploads.XLSX if format == "xlsx" else "text/csv"
    name = f"scope3-request-{g.request_id}.{format}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed ``limit``, before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadRefused(f"the upload is {int(declared):,} bytes; this link takes at most {limit:,}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadRefused(f"the upload is more than {limit:,} bytes, which this link takes at most", 413)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/engage/uploads/{token}", response_model=Received, status_code=201)
async def upload(token: str, request: Request) -> Any:
    """Send the data asked: stored as pending until two people of the company have reviewed it."""
    ctx: ApiContext = request.app.state.scope3
    try:
        g = await run_in_threadpool(_grant, ctx, token)
        body = await _body(request, min(g.max_bytes, MAX_UPLOAD_BYTES))
        sub = await run_in_threadpool(uploads.submit, ctx.write, token, body,
                                      request.headers.get("content-type", "application/json"))
    except UploadRefused as exc:
        return _refusal(exc)
    return JSONResponse(Received(submission_id=sub.id, status=sub.status, payload_sha256=sub.payload_sha256,
                                 message="received: it will be reviewed before it is used").model_dump(),
                        status_code=201)
