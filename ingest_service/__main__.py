"""``python -m ingest_service``: the ingest service alone, with only its own credentials.

Unlike ``scope3 ingest`` it never touches the admin connection, so a deployment can give the ingest
process nothing but ``SCOPE3_INGEST_DATABASE_URL`` (the ingest role) and ``SCOPE3_MQTT_URL`` (its broker
account). Stops cleanly on SIGINT/SIGTERM: writes and acknowledges what it holds, then disconnects.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from scope3lib.config import Settings
from scope3lib.meters.broker import parse_mqtt_url

from .logs import configure
from .service import IngestService


def main() -> int:
    settings = Settings()
    configure(settings.log_format, logging.INFO)
    log = logging.getLogger("scope3.ingest")
    if not settings.ingest_database_url or not settings.mqtt_url:
        log.error("set SCOPE3_INGEST_DATABASE_URL and SCOPE3_MQTT_URL (or run `scope3 ingest`, which can issue them)")
        return 2
    service = IngestService(settings.ingest_database_url, parse_mqtt_url(settings.mqtt_url),
                            client_id=settings.ingest_client_id, shared_group=settings.ingest_shared_group,
                            batch_size=settings.ingest_batch_size, batch_ms=settings.ingest_batch_ms,
                            max_payload_bytes=settings.max_payload_bytes, queue_messages=settings.ingest_queue_messages,
                            metrics_addr=settings.ingest_metrics_addr, writers=settings.ingest_writers)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    service.start()
    log.info("ingest running as %s", settings.ingest_client_id)
    while not stopping.wait(1):
        pass
    service.stop()
    log.info("ingest stopped: %d messages committed", service.stats.messages_committed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
