"""The MQTT broker: connection settings, and the embedded amqtt broker used when none is configured.

Mosquitto is the production broker (DESIGN.md decision 5). When ``SCOPE3_MQTT_URL`` is unset, the
platform runs amqtt in-process so the demo needs nothing installed; amqtt speaks MQTT 3.1.1 only
and moves a few thousand messages a second, enough for a demo, not for production.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import BrokerUnavailable, ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttParams:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    # 5 for Mosquitto (shared subscriptions, receive maximum); 4 (3.1.1) for amqtt.
    protocol: int = 5

    def url(self) -> str:
        auth = f"{self.username}:{self.password}@" if self.username else ""
        return f"mqtt://{auth}{self.host}:{self.port}?protocol={self.protocol}"


def parse_mqtt_url(url: str) -> MqttParams:
    """``mqtt://[user:password@]host[:port][?protocol=5|3.1.1]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise ConfigurationError(f"MQTT URL must start with mqtt://, got {url!r}")
    if not parts.hostname:
        raise ConfigurationError(f"MQTT URL {url!r} names no host")
    query = parse_qs(parts.query)
    proto = query.get("protocol", ["5"])[0]
    if proto not in ("5", "3.1.1", "4"):
        raise ConfigurationError(f"MQTT protocol must be 5 or 3.1.1, got {proto!r}")
    return MqttParams(
        host=parts.hostname,
        port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        protocol=5 if proto == "5" else 4,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """amqtt running on its own event loop in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt-broker", daemon=True)
        self._broker: object | None = None

    @property
    def params(self) -> MqttParams:
        return MqttParams(host=self.host, port=self.port, protocol=4)

    def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def _start() -> object:
            broker = Broker(config)
            await broker.start()
            return broker

        self._thread.start()
        try:
            self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout=20)
        except Exception as exc:
            raise BrokerUnavailable(f"could not start the embedded MQTT broker on port {self.port}: {exc}") from exc
        log.info("embedded amqtt broker on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            broker = self._broker
            try:
                asyncio.run_coroutine_threadsafe(broker.shutdown(), self._loop).result(timeout=10)  # type: ignore[attr-defined]
            except Exception:  # shutting down anyway
                log.warning("embedded broker did not shut down cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
