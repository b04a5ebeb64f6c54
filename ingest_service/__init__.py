"""The MQTT → PostgreSQL ingest service for smart-meter readings (``scope3 ingest``)."""

from .service import IngestService, IngestStats

__all__ = ["IngestService", "IngestStats"]
