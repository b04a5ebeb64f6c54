"""The meter message contract: topic and JSON payload, validated once.

Topic ``scope3/<tenant>/<device>/readings``. Payload, UTF-8 JSON, either one reading::

    {"ts": "2026-11-26T10:15:00Z", "kwh": 1.25}

or a batch::

    {"readings": [{"ts": "...", "kwh": ...}, ...]}

Each reading may also name its ``device``, which must then match the topic. A message is stored
whole or refused whole: one bad reading refuses the message, with a reason naming it.

Parsing is on the ingest's hot path (every message, on the MQTT thread), so valid input takes a fast
path: orjson for the JSON, ``datetime.fromisoformat`` for the common ``YYYY-MM-DDTHH:MM:SS[.fff]Z``
timestamps. Anything the fast path does not accept is parsed again by the strict, slower path, which
decides and names the reason; both accept exactly the same payloads.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import InvalidReading

MAX_BATCH = 10_000
# A single interval reading above 10 GWh is not a meter reading.
MAX_KWH = 1e7
MAX_FUTURE = dt.timedelta(hours=1)
MAX_AGE = dt.timedelta(days=400)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_READING_KEYS = {"ts", "kwh", "device"}


# The topic of a meter's readings, defined here once: the simulator publishes to it, the broker's ACL lets
# each device write only under its own tenant/device levels, and the ingest subscribes to all of them.
TOPIC_PREFIX = "scope3"
READINGS = "readings"
#: What the ingest subscribes to (every tenant's every device).
READINGS_FILTER = f"{TOPIC_PREFIX}/+/+/{READINGS}"


@dataclass(frozen=True)
class Topic:
    tenant: str
    device: str


def readings_topic(tenant: str, device: str) -> str:
    """``scope3/<tenant>/<device>/readings``: where a device publishes."""
    return f"{TOPIC_PREFIX}/{tenant}/{device}/{READINGS}"


def device_topic_pattern(tenant: str, device: str) -> str:
    """``scope3/<tenant>/<device>/#``: everything a device's broker account may write to."""
    return f"{TOPIC_PREFIX}/{tenant}/{device}/#"


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_PREFIX or parts[3] != READINGS or not parts[1] or not parts[2]:
        raise InvalidReading(f"topic {topic!r} is not {readings_topic('<tenant>', '<device>')}")
    return Topic(tenant=parts[1], device=parts[2])


def _fast_utc(value: str) -> dt.datetime | None:
    """``YYYY-MM-DDTHH:MM:SS[.f+]Z`` parsed by the C ``fromisoformat``; None for anything else."""
    n = len(value)
    if (n == 20 or (n > 21 and value[19] == ".")) and value[n - 1] == "Z" and value[10] == "T" \
            and value[4] == "-" and value[7] == "-" and value[13] == ":" and value[16] == ":" and n <= 30:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def parse_timestamp(value: Any, where: str, now: dt.datetime) -> dt.datetime:
    if value.__class__ is str:
        fast = _fast_utc(value)
        if fast is not None and now - MAX_AGE <= fast <= now + MAX_FUTURE:
            return fast
    return _parse_timestamp_strict(value, where, now)


def _parse_timestamp_strict(value: Any, where: str, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidReading(f"{where}: 'ts' must be an RFC 3339 string, got {type(value).__name__}")
    m = _RFC3339.match(value)
    if not m:
        raise InvalidReading(f"{where}: 'ts' {value[:64]!r} is not RFC 3339 with a time zone")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    try:
        offset = dt.timedelta(0)
        if tz not in ("Z", "z"):
            sign = 1 if tz[0] == "+" else -1
            offset = sign * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        ts = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59),
            int((frac or "0")[:6].ljust(6, "0")), tzinfo=dt.timezone(offset),
        )
    except ValueError as exc:
        raise InvalidReading(f"{where}: 'ts' {value!r} is not a valid date and time ({exc})") from None
    if ts > now + MAX_FUTURE:
        raise InvalidReading(f"{where}: 'ts' {value!r} is in the future")
    if ts < now - MAX_AGE:
        raise InvalidReading(f"{where}: 'ts' {value!r} is older than {MAX_AGE.days} days")
    return ts.astimezone(dt.UTC)


def parse_kwh(value: Any, where: str) -> float:
    cls = value.__class__
    if (cls is float or cls is int) and 0 <= value <= MAX_KWH:  # finite, in range: the usual case
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidReading(f"{where}: 'kwh' must be a number, got {type(value).__name__}")
    try:
        kwh = float(value)
    except OverflowError:
        raise InvalidReading(f"{where}: 'kwh' is too large") from None
    if not math.isfinite(kwh):
        raise InvalidReading(f"{where}: 'kwh' must be finite")
    if kwh < 0:
        raise InvalidReading(f"{where}: 'kwh' must not be negative, got {kwh}")
    if kwh > MAX_KWH:
        raise InvalidReading(f"{where}: 'kwh' {kwh:g} exceeds {MAX_KWH:g} kWh for one reading")
    return kwh


def _reject_constant(name: str) -> None:
    raise InvalidReading(f"JSON constant {name} is not allowed")


def parse_payload(
    payload: bytes, device: str, *, now: dt.datetime | None = None, max_bytes: int = 1_048_576
) -> list[tuple[dt.datetime, float]]:
    """Validate a message body; return its readings as (UTC timestamp, kWh) pairs."""
    now = now or dt.datetime.now(dt.UTC)
    if len(payload) > max_bytes:
        raise InvalidReading(f"payload of {len(payload)} bytes exceeds the {max_bytes}-byte limit")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = _loads_strict(payload)  # raises with the precise reason
    else:
        if _has_big_float(doc):
            doc = _loads_strict(payload)  # orjson turns 20+ digit integers into floats; json keeps ints
    return _parse_doc(doc, device, now)


def _has_big_float(doc: Any) -> bool:
    if isinstance(doc, dict):
        if "readings" in doc and isinstance(doc["readings"], list):
            return any(isinstance(r, dict) and isinstance(r.get("kwh"), float) and r["kwh"] >= 1e19
                       for r in doc["readings"])
        return isinstance(doc.get("kwh"), float) and doc["kwh"] >= 1e19
    return False


def _loads_strict(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidReading(f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidReading(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidReading("payload is nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. integers too long to convert
        raise InvalidReading(f"payload is not valid JSON: {exc}") from None
    return doc


def _parse_doc(doc: Any, device: str, now: dt.datetime) -> list[tuple[dt.datetime, float]]:
    if not isinstance(doc, dict):
        raise InvalidReading(f"payload must be a JSON object, got {type(doc).__name__}")
    if "readings" in doc:
        if set(doc) != {"readings"}:
            raise InvalidReading(f"batch payload has unknown fields {sorted(set(doc) - {'readings'})}")
        items = doc["readings"]
        if not isinstance(items, list):
            raise InvalidReading("'readings' must be a list")
        if not items:
            raise InvalidReading("'readings' is empty")
        if len(items) > MAX_BATCH:
            raise InvalidReading(f"'readings' has {len(items)} readings; at most {MAX_BATCH} per message")
        return [_parse_reading(item, f"readings[{i}]", device, now) for i, item in enumerate(items)]
    return [_parse_reading(doc, "reading", device, now)]


def _parse_reading(item: Any, where: str, device: str, now: dt.datetime) -> tuple[dt.datetime, float]:
    if item.__class__ is dict and len(item) == 2 and "ts" in item and "kwh" in item:  # the usual shape
        return parse_timestamp(item["ts"], where, now), parse_kwh(item["kwh"], where)
    if not isinstance(item, dict):
        raise InvalidReading(f"{where}: must be an object, got {type(item).__name__}")
    unknown = set(item) - _READING_KEYS
    if unknown:
        raise InvalidReading(f"{where}: unknown fields {sorted(unknown)}")
    for key in ("ts", "kwh"):
        if key not in item:
            raise InvalidReading(f"{where}: missing field '{key}'")
    if "device" in item and item["device"] != device:
        raise InvalidReading(f"{where}: names device {str(item['device'])[:64]!r} but the topic names {device!r}")
    return parse_timestamp(item["ts"], where, now), parse_kwh(item["kwh"], where)
