"""A meter's MQTT account: its user name, and its password hashed the way Mosquitto stores it.

Device passwords are stored only as Mosquitto ``$7$`` (PBKDF2-SHA512) hashes, so the broker's password
file can be written straight from the database and nobody keeps a device's password after it is issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Mosquitto's mosquitto_passwd defaults (mosquitto 2.0): PBKDF2-SHA512, 101 iterations, 12-byte salt.
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12


def mqtt_username(tenant: str, device: str) -> str:
    # '.' is in neither alphabet, so the pair is unambiguous; '/' would break Mosquitto ACL patterns.
    return f"{tenant}.{device}"


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = _PBKDF2_ITERATIONS) -> str:
    """Hash ``password`` exactly as ``mosquitto_passwd`` does (``$7$`` PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(stored: str, password: str) -> bool:
    try:
        _, kind, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    expected = mosquitto_hash(password, salt=base64.b64decode(salt), iterations=int(iterations))
    return hmac.compare_digest(expected.rsplit("$", 1)[1], digest)
