"""A smart-meter simulator: realistic energy readings published over MQTT.

Each simulated meter has a base load (kW) drawn from a log-normal distribution and follows a daily
shape (low at night, a ramp to a working-day plateau, an evening fall) and a weekly one (weekends
at about 60%), with multiplicative noise. A reading is the energy since the meter's previous one,
in kWh, stamped with the time it was taken.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .broker import MqttParams
from .contract import readings_topic

log = logging.getLogger(__name__)

# Hours from UTC for the simulated sites' local time (standard time; good enough for a load shape).
REGION_UTC_OFFSET = {
    "CAMX": -8, "NWPP": -8, "AZNM": -7, "RMPA": -7, "ERCT": -6, "MROW": -6, "SRMW": -6, "SPSO": -6,
    "RFCW": -5, "RFCE": -5, "NYUP": -5, "NYCW": -5, "NEWE": -5, "SRSO": -5, "FRCC": -5,
    "GB": 0, "FR": 1, "DE": 1, "IN": 5.5, "CN": 8, "JP": 9, "MX": -6,
}


def load_shape(ts: dt.datetime, utc_offset: float) -> float:
    """Relative load (about 0.3 at night to 1.0 at midday on a weekday) at ``ts``."""
    local = ts + dt.timedelta(hours=utc_offset)
    hour = local.hour + local.minute / 60
    # Smooth working-day bump centred on 13:00 with a base that never reaches zero.
    day = 0.3 + 0.7 * math.exp(-(((hour - 13) / 4.5) ** 2))
    week = 0.6 if local.weekday() >= 5 else 1.0
    return day * week


@dataclass
class SimulatedMeter:
    tenant: str
    device: str
    region: str
    base_kw: float
    username: str | None = None
    password: str | None = None
    last: dt.datetime | None = None
    # A planted fault, for demos of the anomaly detection: "stuck" repeats its reading for 10 of every 40
    # readings; "spike" reads 20 times its load every 120th reading.
    fault: str | None = None
    count: int = 0
    last_kwh: float = 0.0

    def reading(self, now: dt.datetime, rng: np.random.Generator) -> dict[str, object]:
        hours = 0.0 if self.last is None else (now - self.last).total_seconds() / 3600
        self.last = now
        kw = self.base_kw * load_shape(now, REGION_UTC_OFFSET.get(self.region, 0))
        kwh = round(max(0.0, kw * hours * float(rng.lognormal(0.0, 0.05))), 6)
        self.count += 1
        if self.fault == "stuck" and self.count % 40 >= 30 and self.last_kwh > 0:
            kwh = self.last_kwh
        elif self.fault == "spike" and self.count % 120 == 0:
            kwh = round(kwh * 20, 6)
        self.last_kwh = kwh
        return {"ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "kwh": kwh}


class MeterSimulator:
    """Publish readings for ``meters`` at ``rate`` messages per second in total (QoS 1)."""

    def __init__(self, params: MqttParams, meters: list[SimulatedMeter], rate: float, seed: int = 7) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.params = params
        self.meters = meters
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.published = 0
        self.acknowledged = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clients: dict[str | None, mqtt.Client] = {}

    def _client(self, meter: SimulatedMeter) -> mqtt.Client:
        # One connection per credential: with per-device accounts the broker's ACL checks each.
        key = meter.username
        client = self._clients.get(key)
        if client is None:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"sim-{meter.tenant}-{meter.device}" if key else f"sim-{id(self)}",
                protocol=mqtt.MQTTv5 if self.params.protocol == 5 else mqtt.MQTTv311,
            )
            user = meter.username or self.params.username
            if user:
                client.username_pw_set(user, meter.password or self.params.password)
            client.max_inflight_messages_set(1000)
            client.on_publish = self._on_publish
            client.connect(self.params.host, self.params.port, keepalive=30)
            client.loop_start()
            self._clients[key] = client
        return client

    def run(self, duration: float | None = None) -> int:
        """Publish until ``stop()`` or ``duration`` seconds; returns the number of messages published."""
        started = time.monotonic()
        interval = 1.0 / self.rate
        i = 0
        next_at = started
        while not self._stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            meter = self.meters[i % len(self.meters)]
            now = dt.datetime.now(dt.UTC)
            payload = json.dumps(meter.reading(now, self.rng))
            self._client(meter).publish(readings_topic(meter.tenant, meter.device), payload, qos=1)
            self.published += 1
            i += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        # QoS 1: a reading is delivered once the broker has acknowledged it; wait for the last ones.
        deadline = time.monotonic() + 30
        while self.acknowledged < self.published and time.monotonic() < deadline:
            time.sleep(0.05)
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()
        return self.published

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: object,
                    properties: object) -> None:
        with self._lock:
            self.acknowledged += 1

    def stop(self) -> None:
        self._stop.set()


def make_meters(
    tenant: str, devices: list[tuple[str, str]], seed: int = 7,
    credentials: dict[str, tuple[str, str]] | None = None, faults: dict[str, str] | None = None,
) -> list[SimulatedMeter]:
    """Meters for ``devices`` [(device key, grid region)], with base loads of 5-200 kW; ``faults`` plants a
    fault ("stuck", "spike") in the named devices."""
    rng = np.random.default_rng(seed)
    credentials, faults = credentials or {}, faults or {}
    meters = []
    for key, region in devices:
        user, password = credentials.get(key, (None, None))
        meters.append(SimulatedMeter(tenant, key, region, float(np.clip(rng.lognormal(3.4, 0.8), 5, 200)),
                                     username=user, password=password, fault=faults.get(key)))
    return meters
