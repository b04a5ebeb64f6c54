"""The CloudEvents of PACT v3 ``POST /3/events``: reading what a partner sends, writing what we send.

PACT v3 (section 5.8) exchanges four event types as CloudEvents 1.0 in structured content mode: the whole
event is the JSON body, sent as ``application/cloudevents+json``; ``type``, ``specversion`` ("1.0"), ``id``,
``source``, ``time`` and ``data`` are required. A host answers 200 with an empty body when it accepts an
event, and a 4xx with an Error object when the event is invalid (:class:`~scope3lib.errors.EventRefused`,
whose problems carry the JSON path as for footprints: ``data.pfs[0].pcf.declaredUnitAmount: ...``).

* RequestCreated (recipient -> owner): criteria as for ``GET /3/footprints`` (:mod:`.filters`); the owner
  accepts it, then later sends RequestFulfilled (one or more footprints) or RequestRejected (an Error).
* Published (owner -> recipient): ids of footprints that were published or updated, to fetch with
  ``GET /3/footprints/{id}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from scope3lib.errors import EventRefused, Problem
from scope3lib.pact.filters import DATE_FILTERS, LIST_FILTERS, FootprintFilter
from scope3lib.pact.model import (
    DateTime,
    Error,
    ErrorCode,
    NonEmptyText,
    ProductFootprint,
    Status,
    Text,
    Urn,
    Uuid,
    at_least_one,
    consistency_problems,
    json_path,
    one_of,
    problems_of,
    show,
    without_nulls,
)

MEDIA_TYPE = "application/cloudevents+json"
REQUEST_CREATED = "org.wbcsd.pact.ProductFootprint.RequestCreatedEvent.3"
REQUEST_FULFILLED = "org.wbcsd.pact.ProductFootprint.RequestFulfilledEvent.3"
REQUEST_REJECTED = "org.wbcsd.pact.ProductFootprint.RequestRejectedEvent.3"
PUBLISHED = "org.wbcsd.pact.ProductFootprint.PublishedEvent.3"
EventType = Literal["org.wbcsd.pact.ProductFootprint.RequestCreatedEvent.3",
                    "org.wbcsd.pact.ProductFootprint.RequestFulfilledEvent.3",
                    "org.wbcsd.pact.ProductFootprint.RequestRejectedEvent.3",
                    "org.wbcsd.pact.ProductFootprint.PublishedEvent.3"]
CRITERIA = ("productId", "companyId", "geography", "classification", "validOn", "validAfter", "validBefore",
            "status")


def _spec_version(value: object) -> str:
    if value != "1.0":
        raise ValueError(f"{show(value)} is not \"1.0\": PACT v3 events are CloudEvents 1.0")
    return "1.0"


class _Event(BaseModel):
    # CloudEvents extension attributes (and datacontenttype, subject...) are allowed and kept.
    model_config = ConfigDict(extra="allow", frozen=True)

    type: Annotated[EventType, BeforeValidator(one_of(EventType))]
    specversion: Annotated[str, BeforeValidator(_spec_version)]
    id: NonEmptyText
    source: NonEmptyText
    time: DateTime
    data: dict[str, Any]


class RequestCriteria(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    productId: Annotated[list[Urn], AfterValidator(at_least_one)] | None = None
    companyId: Annotated[list[Urn], AfterValidator(at_least_one)] | None = None
    geography: Annotated[list[Text], AfterValidator(at_least_one)] | None = None
    classification: Annotated[list[Urn], AfterValidator(at_least_one)] | None = None
    validOn: DateTime | None = None
    validAfter: DateTime | None = None
    validBefore: DateTime | None = None
    status: Annotated[Status, BeforeValidator(one_of(Status))] | None = None
    comment: Text | None = None

    def to_filter(self) -> FootprintFilter:
        """The criteria as the list filter: a request is fulfilled with what ``GET /3/footprints`` would give."""
        return FootprintFilter(productId=tuple(self.productId or ()), companyId=tuple(self.companyId or ()),
                               geography=tuple(self.geography or ()),
                               classification=tuple(self.classification or ()),
                               status=(self.status,) if self.status else (), validOn=self.validOn,
                               validAfter=self.validAfter, validBefore=self.validBefore)


class RequestCreatedEvent(_Event):
    type: Literal["org.wbcsd.pact.ProductFootprint.RequestCreatedEvent.3"]
    data: RequestCriteria  # type: ignore[assignment]


class FulfilledData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    requestEventId: NonEmptyText
    pfs: Annotated[list[ProductFootprint], AfterValidator(at_least_one)]


class RequestFulfilledEvent(_Event):
    type: Literal["org.wbcsd.pact.ProductFootprint.RequestFulfilledEvent.3"]
    data: FulfilledData  # type: ignore[assignment]


class RejectedData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    requestEventId: NonEmptyText
    error: Error


class RequestRejectedEvent(_Event):
    type: Literal["org.wbcsd.pact.ProductFootprint.RequestRejectedEvent.3"]
    data: RejectedData  # type: ignore[assignment]


class PublishedData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    pfIds: Annotated[list[Uuid], AfterValidator(at_least_one)]


class PublishedEvent(_Event):
    type: Literal["org.wbcsd.pact.ProductFootprint.PublishedEvent.3"]
    data: PublishedData  # type: ignore[assignment]


PactEvent = RequestCreatedEvent | RequestFulfilledEvent | RequestRejectedEvent | PublishedEvent
_BY_TYPE: dict[str, type[PactEvent]] = {REQUEST_CREATED: RequestCreatedEvent, REQUEST_FULFILLED: RequestFulfilledEvent,
                                       REQUEST_REJECTED: RequestRejectedEvent, PUBLISHED: PublishedEvent}


def _body(body: bytes | str | Mapping[str, Any], content_type: str | None) -> Mapping[str, Any]:
    if content_type is not None and content_type.split(";")[0].strip().lower() != MEDIA_TYPE:
        raise EventRefused([("Content-Type", f"{content_type!r} is not {MEDIA_TYPE}: PACT events are CloudEvents "
                                             "in structured mode, the whole event as the JSON body")])
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EventRefused([("(body)", f"is not JSON: {error}")]) from None
    if not isinstance(body, Mapping):
        raise EventRefused([("(body)", f"{show(body)} is not a JSON object (a CloudEvent)")])
    return body


def parse_event(body: bytes | str | Mapping[str, Any], content_type: str | None = MEDIA_TYPE) -> PactEvent:
    """Validate a request to ``/3/events``; ``content_type`` is the request's header (None to skip the check).

    Raises :class:`~scope3lib.errors.EventRefused` with every problem; a host answers it with 400 BadRequest.
    """
    data = without_nulls(_body(body, content_type))
    try:
        envelope = _Event.model_validate(data)
        event = _BY_TYPE[envelope.type].model_validate(data)
    except ValidationError as error:
        raise EventRefused(problems_of(error)) from None
    found = _event_problems(event)
    if found:
        raise EventRefused(found)
    return event


def _event_problems(event: PactEvent) -> list[Problem]:
    """What the schema cannot say: footprints' own consistency, a request with no criteria."""
    if isinstance(event, RequestFulfilledEvent):
        return [(json_path(f"data.pfs[{i}]", path.split(".")), message)
                for i, fp in enumerate(event.data.pfs) for path, message in consistency_problems(fp)]
    if isinstance(event, RequestCreatedEvent) and event.data.to_filter().is_empty():
        return [("data", f"gives no criteria: name the footprints wanted by one of {', '.join(CRITERIA)}")]
    return []


# ----------------------------------------------------------------------------------------------------------
# Events this platform sends


def new_event(event_type: str, source: str, data: Mapping[str, Any], event_id: str | None = None,
              time: datetime | None = None) -> dict[str, Any]:
    """A CloudEvent as the JSON body to POST (with ``Content-Type: application/cloudevents+json``).

    ``source`` is our own events endpoint (``//host/pact/3/events``), ``event_id`` unique per source."""
    moment = (time or datetime.now(UTC)).astimezone(UTC)
    return {"type": event_type, "specversion": "1.0", "id": event_id or str(uuid4()), "source": source,
            "time": moment.isoformat().replace("+00:00", "Z"), "data": dict(data)}


def request_created(source: str, criteria: FootprintFilter, comment: str | None = None,
                    event_id: str | None = None) -> dict[str, Any]:
    """Ask a data owner for footprints that match ``criteria`` (at least one criterion)."""
    data: dict[str, Any] = {name: list(getattr(criteria, name)) for name in LIST_FILTERS[:4] if getattr(criteria, name)}
    data.update((name, value) for name, value in criteria.to_query() if name in DATE_FILTERS)
    if criteria.status:
        data["status"] = {"active": "Active", "deprecated": "Deprecated"}.get(criteria.status[0].lower(),
                                                                            criteria.status[0])
    if comment:
        data["comment"] = comment
    return new_event(REQUEST_CREATED, source, data, event_id)


def request_fulfilled(source: str, request_event_id: str, footprints: Sequence[ProductFootprint]) -> dict[str, Any]:
    """Answer a RequestCreated event with the footprints found (at least one; otherwise reject it)."""
    if not footprints:
        raise ValueError("a RequestFulfilled event carries at least one footprint; send request_rejected instead")
    return new_event(REQUEST_FULFILLED, source,
                     {"requestEventId": request_event_id, "pfs": [fp.to_json() for fp in footprints]})


def request_rejected(source: str, request_event_id: str, code: ErrorCode, message: str) -> dict[str, Any]:
    """Answer a RequestCreated event that cannot be fulfilled, e.g. ``("NotFound", "no footprint of ...")``."""
    return new_event(REQUEST_REJECTED, source,
                     {"requestEventId": request_event_id, "error": {"code": code, "message": message}})


def published(source: str, footprint_ids: Sequence[str]) -> dict[str, Any]:
    """Tell a recipient that footprints were published or updated (it fetches each by id)."""
    return new_event(PUBLISHED, source, {"pfIds": list(footprint_ids)})
