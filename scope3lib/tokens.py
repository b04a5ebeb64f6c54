"""Secrets the platform issues: API keys, PACT client secrets and access tokens, supplier upload links.

Every one is 256 random bits (43 URL-safe characters) behind a visible prefix that says what it is (``s3k_``,
``pat_``, ``s3u_``), shown once and stored only as its SHA-256: with that much randomness a fast hash is as
safe as a slow one, and a request pays one indexed lookup. A presented secret is compared with the stored
digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def issue(prefix: str = "") -> str:
    """A new secret: ``prefix`` followed by 256 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def public_id(prefix: str, nbytes: int) -> str:
    """A random identifier stored in clear beside a secret (``prefix`` and ``nbytes`` random bytes in hex)."""
    return prefix + secrets.token_hex(nbytes)


def digest(secret: str) -> bytes:
    """What is stored of a secret: its SHA-256 (32 bytes)."""
    return hashlib.sha256(secret.encode()).digest()


def matches(stored: bytes | memoryview, secret: str) -> bool:
    """Whether ``secret`` is the one whose :func:`digest` is ``stored``, in constant time."""
    return hmac.compare_digest(bytes(stored), digest(secret))
