"""The meter message contract, checked without a broker."""

from __future__ import annotations

import datetime as dt

import pytest

from scope3lib.errors import InvalidReading
from scope3lib.meters.contract import parse_payload, parse_topic

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def parse(payload: bytes | str, device: str = "m1") -> list[tuple[dt.datetime, float]]:
    data = payload.encode() if isinstance(payload, str) else payload
    return parse_payload(data, device, now=NOW)


def test_single_and_batch() -> None:
    assert parse('{"ts": "2026-11-26T11:00:00Z", "kwh": 1.5}') == [(dt.datetime(2026, 11, 26, 11, tzinfo=dt.UTC), 1.5)]
    rows = parse('{"readings": [{"ts": "2026-11-26T11:00:00+01:00", "kwh": 2}, '
                 '{"ts": "2026-11-26 11:00:00.123456789z", "kwh": 0, "device": "m1"}]}')
    assert rows[0] == (dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC), 2.0)
    assert rows[1][0].microsecond == 123456


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\xff\xfe", "not UTF-8"),
    ("{not json", "not JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"kwh": 1}', "missing field 'ts'"),
    ('{"ts": "2026-11-26T11:00:00Z"}', "missing field 'kwh'"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": -1}', "must not be negative"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": NaN}', "NaN is not allowed"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": 1e999}', "must be finite"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": 1e12}', "exceeds"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": "1.5"}', "must be a number"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": true}', "must be a number"),
    ('{"ts": "2026-11-26T11:00:00", "kwh": 1}', "RFC 3339"),
    ('{"ts": 1764154800, "kwh": 1}', "RFC 3339 string"),
    ('{"ts": "2026-02-30T11:00:00Z", "kwh": 1}', "not a valid date"),
    ('{"ts": "2030-01-01T00:00:00Z", "kwh": 1}', "in the future"),
    ('{"ts": "1999-01-01T00:00:00Z", "kwh": 1}', "older than"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": 1, "device": "m2"}', "topic names 'm1'"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": 1, "extra": 1}', "unknown fields"),
    ('{"readings": []}', "is empty"),
    ('{"readings": {}}', "must be a list"),
    ('{"readings": [{"ts": "2026-11-26T11:00:00Z", "kwh": 1}, {"kwh": 2}]}', "readings[1]: missing field 'ts'"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"ts": "2026-11-26T11:00:00Z", "kwh": ' + "9" * 5000 + "}", "JSON"),
])
def test_refusals_name_the_problem(payload: bytes | str, reason: str) -> None:
    with pytest.raises(InvalidReading) as err:
        parse(payload)
    assert reason in err.value.reason


def test_payload_size_limit() -> None:
    with pytest.raises(InvalidReading, match="exceeds the 1024-byte limit"):
        parse_payload(b" " * 2000, "m1", now=NOW, max_bytes=1024)


def test_topic() -> None:
    t = parse_topic("scope3/acme/meter-1/readings")
    assert (t.tenant, t.device) == ("acme", "meter-1")
    for bad in ("scope3/acme/readings", "other/acme/m/readings", "scope3//m/readings", "scope3/a/m/x"):
        with pytest.raises(InvalidReading, match="topic"):
            parse_topic(bad)
