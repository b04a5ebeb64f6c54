"""Inclusion and consistency proofs as JSON files, hashes in standard base64 as in RFC 6962's
``get-proof-by-hash`` and ``get-sth-consistency`` (``audit_path``, ``consistency``)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidProof

# --- proofs as files -----------------------------------------------------------------------------


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidProof(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise InvalidProof(f"{what} is not valid base64: {text!r}") from None


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidProof(f"the proof's {key!r} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class InclusionProof:
    """That leaf ``leaf_index`` (hash ``leaf_hash``) is in the log ``origin`` at ``tree_size`` leaves."""

    origin: str
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]

    def to_json(self) -> str:
        return json.dumps({
            "format": "scope3 ledger inclusion proof (RFC 6962, SHA-256, base64 hashes)",
            "origin": self.origin, "leaf_index": self.leaf_index, "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash), "audit_path": [b64(h) for h in self.audit_path],
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> InclusionProof:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidProof(f"the proof file is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("audit_path"), list):
            raise InvalidProof("the proof file has no 'audit_path' list: is it an inclusion proof?")
        return cls(origin=str(data.get("origin", "")), leaf_index=_int(data, "leaf_index"),
                   tree_size=_int(data, "tree_size"), leaf_hash=_unb64(data.get("leaf_hash"), "leaf_hash"),
                   audit_path=tuple(_unb64(h, "an audit_path hash") for h in data["audit_path"]))


@dataclass(frozen=True)
class ConsistencyProof:
    """That the log ``origin`` at ``second`` leaves extends itself at ``first`` leaves."""

    origin: str
    first: int
    second: int
    consistency: tuple[bytes, ...]

    def to_json(self) -> str:
        return json.dumps({
            "format": "scope3 ledger consistency proof (RFC 6962, SHA-256, base64 hashes)",
            "origin": self.origin, "first": self.first, "second": self.second,
            "consistency": [b64(h) for h in self.consistency],
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ConsistencyProof:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidProof(f"the proof file is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("consistency"), list):
            raise InvalidProof("the proof file has no 'consistency' list: is it a consistency proof?")
        return cls(origin=str(data.get("origin", "")), first=_int(data, "first"), second=_int(data, "second"),
                   consistency=tuple(_unb64(h, "a consistency hash") for h in data["consistency"]))


