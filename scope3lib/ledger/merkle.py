"""The tamper-evident ledger, pure half: canonical JSON, RFC 6962 Merkle trees and proofs, signed checkpoints.

Nothing here touches the database: ``scope3 ledger audit`` imports only this module, so an auditor
verifies a proof offline with the checkpoint, the proof, the entry file and the tenant's public key.
The database half (the append trigger, checkpoints, proofs and verification of a tenant's log) is
:mod:`scope3lib.ledger.log`.

Formats, each chosen so that an auditor can check it with public tools:

* **Leaves.** A leaf is the canonical JSON of one change to an emission entry (see
  :func:`canonical_json` and :func:`leaf_data`). Hashing is RFC 6962 section 2.1:
  leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right), and the tree over
  n leaves splits at the largest power of two smaller than n.
* **Proofs.** Inclusion proofs (RFC 6962 2.1.1 ``PATH``) and consistency proofs (2.1.2 ``PROOF``),
  verified with the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2. In JSON, hashes are standard
  base64 as in RFC 6962's ``get-proof-by-hash`` and ``get-sth-consistency`` (``audit_path``, ``consistency``).
* **Checkpoints.** A C2SP ``tlog-checkpoint`` (origin line, tree size, base64 root hash, then our
  ``timestamp`` extension line) wrapped in a C2SP ``signed-note`` with an Ed25519 signature, key ID
  SHA-256(key name || 0x0A || 0x01 || public key)[:4]: the format of Go's ``golang.org/x/mod/sumdb/note``
  and of the transparency-dev tools, so those can verify our checkpoints too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import InvalidCheckpoint, InvalidProof

HASH_SIZE = 32  # bytes of a SHA-256 digest
#: MTH({}) of RFC 6962: the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: The events a leaf records (the database refuses any other).
EVENTS = ("create", "correct", "recalculate", "delete")

_SIG_PREFIX = "\u2014 "  # em dash, space: a signed note's signature line (C2SP signed-note)
_ALG_ED25519 = b"\x01"


# --- hashing -------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- canonical JSON ------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON value; PostgreSQL's ``ledger_canonical`` produces the same.

    The form follows RFC 8785 (JSON Canonicalization Scheme) except for numbers:

    * no whitespace; object members sorted by key in Unicode code point order (for the ASCII keys the
      ledger uses this is also RFC 8785's UTF-16 order); members whose value is null are **omitted**
      at every depth (so adding a nullable column to ``emission_entries`` leaves the canonical form
      of existing entries unchanged); null array elements stay ``null``;
    * strings as JSON strings in UTF-8, escaping only ``"``, ``\\`` and control characters below
      U+0020 (``\\b \\t \\n \\f \\r`` by name, the rest as ``\\u00xx`` in lower-case hex), as RFC 8785;
    * numbers in plain positional notation, never an exponent: integers as themselves; a double
      (PostgreSQL ``double precision``, Python ``float``) as PostgreSQL's ``float8out`` prints it
      with ``extra_float_digits`` >= 1: the shortest decimal lying strictly inside the interval of
      reals that round to that double (see :func:`_double_digits`); a decimal (``numeric``,
      :class:`~decimal.Decimal`) exactly; in both cases without trailing fractional zeros or a
      trailing point, and ``0`` for negative zero. For doubles in [1e-6, 1e21) this is RFC 8785's
      (ECMAScript) form except for the rare doubles (about 1 in 2,000) whose shortest digits lie
      exactly on the interval's bound, where PostgreSQL, and so the ledger, uses one digit more.
      NaN and the infinities,
      which JSON lacks, become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as
      PostgreSQL's ``to_jsonb`` does);
    * dates as ``YYYY-MM-DD``; timestamps as PostgreSQL's JSON form: ISO 8601 with ``T``, fractional
      seconds only when non-zero and without trailing zeros, and for aware timestamps the UTC offset
      ``+00:00`` after conversion to UTC.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int | float | Decimal):
        out.append(format_number(value))
    elif isinstance(value, dt.datetime):
        out.append(json.dumps(_timestamp_text(value)))
    elif isinstance(value, dt.date):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, Mapping):
        members = []
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be strings, got {key!r}")
            if value[key] is None:
                continue
            parts: list[str] = [json.dumps(key, ensure_ascii=False), ":"]
            _encode(value[key], parts)
            members.append("".join(parts))
        out.append("{" + ",".join(members) + "}")
    elif isinstance(value, list | tuple):
        items = []
        for item in value:
            parts = []
            _encode(item, parts)
            items.append("".join(parts))
        out.append("[" + ",".join(items) + "]")
    else:
        raise TypeError(f"no canonical JSON form for {type(value).__name__}: {value!r}")


def format_number(x: int | float | Decimal) -> str:
    """A number as canonical JSON (see :func:`canonical_json`); non-finite values as JSON strings."""
    if isinstance(x, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return '"NaN"' if math.isnan(x) else ('"Infinity"' if x > 0 else '"-Infinity"')
        d = _double_digits(x)
    else:
        d = x
        if not d.is_finite():
            return '"NaN"' if d.is_nan() else ('"Infinity"' if d > 0 else '"-Infinity"')
    s = format(d, "f")  # exact: no rounding to the context's precision, unlike Decimal.normalize()
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _double_digits(x: float) -> Decimal:
    """The decimal PostgreSQL prints for the double ``x`` (float8out, extra_float_digits >= 1).

    PostgreSQL uses Ryu (src/common/d2s.c) built without ``STRICTLY_SHORTEST``, so a candidate on a
    bound of the rounding interval is never accepted, while Python's ``repr`` (David Gay's shortest
    mode, like ECMAScript) accepts the bound when the double's mantissa is even. They differ only
    when ``repr``'s digits lie exactly on a bound: e.g. 5.5766562036487056e+16, which ``repr``
    writes 5.576656203648706e+16, the midpoint between it and the next double.
    """
    d = Decimal(repr(x))
    if x == 0:
        return d
    exact = Fraction(x)
    below, above = math.nextafter(x, -math.inf), math.nextafter(x, math.inf)
    gap = abs(Fraction(below if math.isfinite(below) else above) - exact)  # beyond the largest double: its ulp
    lo = (exact + Fraction(below)) / 2 if math.isfinite(below) else exact - gap / 2
    hi = (exact + Fraction(above)) / 2 if math.isfinite(above) else exact + gap / 2
    if lo < Fraction(d) < hi:
        return d
    for digits in range(len(d.as_tuple().digits), 18):  # 17 significant digits always round-trip
        c = Decimal(format(x, f".{digits - 1}e"))  # correctly rounded from the exact binary value
        unit = Decimal((0, (1,), c.adjusted() - digits + 1))
        inside = [v for v in (c, c - unit, c + unit) if lo < Fraction(v) < hi]
        if inside:
            return min(inside, key=lambda v: abs(Fraction(v) - exact))
    raise AssertionError(f"no decimal of at most 17 digits inside the rounding interval of {x!r}")


def _timestamp_text(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + ("+00:00" if value.tzinfo is not None else "")


def recorded_at_text(value: dt.datetime) -> str:
    """A leaf's ``recorded_at``: UTC with exactly six fractional digits and ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_data(*, tenant_id: int, leaf_index: int, entry_id: int, event: str, actor: str, reason: str | None,
              recorded_at: dt.datetime, entry: Mapping[str, Any]) -> bytes:
    """The bytes of one leaf, as the database's ``ledger_leaf_data`` writes them.

    A canonical JSON object with ``actor`` (the PostgreSQL login role that made the change),
    ``entry`` (the entry's content after the change; for a deletion, its last content), ``entry_id``,
    ``event`` (create, correct, recalculate or delete), ``leaf_index`` (its position in the log, so a
    moved leaf no longer matches its hash), ``reason`` (omitted when none), ``recorded_at`` (see
    :func:`recorded_at_text`) and ``tenant_id``.
    """
    return canonical_json({
        "actor": actor, "entry": entry, "entry_id": entry_id, "event": event, "leaf_index": leaf_index,
        "reason": reason, "recorded_at": recorded_at_text(recorded_at), "tenant_id": tenant_id,
    })


def parse_canonical(data: bytes) -> Any:
    """Parse canonical JSON bytes, keeping every number exact (fractions as Decimal)."""
    return json.loads(data, parse_float=Decimal)


# --- Merkle tree ---------------------------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 6962 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An RFC 6962 Merkle tree over leaf hashes, with every complete subtree kept for proofs.

    ``leaf_hashes`` is the concatenation of the 32-byte leaf hashes in log order; :meth:`append`
    adds more (so a tree can be built while the rest of the log is still being read). Building costs
    one SHA-256 per interior node (n - 1 for n leaves, ~0.5 µs each here); after that the root at any
    size and any proof cost O(log n) hashes.
    """

    def __init__(self, leaf_hashes: bytes | bytearray | memoryview = b"") -> None:
        # _levels[k] holds the hashes of the complete, aligned subtrees of 2**k leaves, concatenated.
        self._levels: list[bytearray] = [bytearray()]
        self.size = 0
        self.append(leaf_hashes)

    def append(self, leaf_hashes: bytes | bytearray | memoryview) -> None:
        """Add leaves (their hashes, concatenated) at the end of the tree."""
        if len(leaf_hashes) % HASH_SIZE:
            raise ValueError(f"leaf hashes must be a multiple of {HASH_SIZE} bytes, got {len(leaf_hashes)}")
        self._levels[0] += leaf_hashes
        self.size = len(self._levels[0]) // HASH_SIZE
        sha256 = hashlib.sha256
        k = 0
        while len(self._levels[k]) >= 2 * HASH_SIZE:
            if k + 1 == len(self._levels):
                self._levels.append(bytearray())
            parent = self._levels[k + 1]
            done = len(parent) * 2  # bytes of this level already paired into the parent level
            new = bytes(self._levels[k][done:len(self._levels[k]) // 64 * 64])
            parent += b"".join([sha256(b"\x01" + new[i:i + 64]).digest() for i in range(0, len(new), 64)])
            k += 1

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """A tree over leaf data (hashed here with :func:`leaf_hash`)."""
        return cls(b"".join(leaf_hash(d) for d in leaves))

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} outside a tree of {self.size} leaves")
        return bytes(self._levels[0][HASH_SIZE * index:HASH_SIZE * (index + 1)])

    def _hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the ranges RFC 6962's recursions visit."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        k = n.bit_length() - 1
        if n == 1 << k and start % n == 0:
            j = start >> k
            return bytes(self._levels[k][HASH_SIZE * j:HASH_SIZE * (j + 1)])
        mid = start + _split(n)
        return node_hash(self._hash(start, mid), self._hash(mid, end))

    def _check_size(self, size: int | None) -> int:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all by default)."""
        return self._hash(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 2.1.1 PATH(index, D[0:size]): sibling hashes from the leaf up to the root."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            mid = start + _split(end - start)
            if index < mid:
                path.append(self._hash(mid, end))
                end = mid
            else:
                path.append(self._hash(start, mid))
                start = mid
        return path[::-1]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 2.1.2 PROOF(old_size, D[0:new_size]) = SUBPROOF(m, D[n], true)."""
        new_size = self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"cannot prove a tree of {old_size} leaves consistent with one of {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        start, end, m, complete = 0, new_size, old_size, True
        while True:
            n = end - start
            if m == n:
                if not complete:
                    proof.append(self._hash(start, end))
                break
            k = _split(n)
            if m <= k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                start, m, complete = start + k, m - k, False
        return proof[::-1]


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise InvalidProof(f"{what} is {len(h)} bytes, not a {HASH_SIZE}-byte SHA-256 hash")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2); raises InvalidProof if malformed."""
    if not 0 <= index < size:
        raise InvalidProof(f"leaf index {index} is outside a tree of {size} leaves")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "a proof hash")
        if sn == 0:
            raise InvalidProof("the inclusion proof has more hashes than the tree size allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InvalidProof("the inclusion proof has fewer hashes than the tree size needs")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise InvalidProof unless ``proof`` shows leaf ``index`` with hash ``leaf`` in the tree ``root``."""
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise InvalidProof(f"the inclusion proof of leaf {index} does not lead to the root of the {size}-leaf tree")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise InvalidProof unless the tree ``new_root`` extends ``old_root`` (RFC 9162 2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        raise InvalidProof(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == new_size:
        if proof:
            raise InvalidProof("trees of the same size need an empty consistency proof")
        if old_root != new_root:
            raise InvalidProof(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise InvalidProof("every tree extends the empty tree: the proof must be empty")
        return
    if not proof:
        raise InvalidProof("the consistency proof is empty")
    for p in proof:
        _check_hash(p, "a proof hash")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # old tree is a complete subtree: its root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProof("the consistency proof has more hashes than the tree sizes allow")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InvalidProof("the consistency proof has fewer hashes than the tree sizes need")
    if fr != old_root:
        raise InvalidProof(f"the consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise InvalidProof(f"the consistency proof does not lead to the new root (size {new_size})")


# --- proofs as files -----------------------------------------------------------------------------


def _b64(h: bytes) -> str:
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
            "leaf_hash": _b64(self.leaf_hash), "audit_path": [_b64(h) for h in self.audit_path],
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
            "consistency": [_b64(h) for h in self.consistency],
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


# --- keys and signed checkpoints -----------------------------------------------------------------


def _valid_key_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() for c in name) and "+" not in name


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte C2SP signed-note key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The note verifier key ``name+<key id hex>+<base64(0x01 || key)>`` (golang.org/x/mod/sumdb/note)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{name}+{key_id(name, public_key).hex()}+{_b64(_ALG_ED25519 + raw)}"


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """The key as a PEM SubjectPublicKeyInfo (what ``openssl pkey -pubin`` reads)."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class VerifierKey:
    """A trusted public key; ``name`` is None for a PEM key (the checkpoint's origin is used)."""

    public_key: Ed25519PublicKey
    name: str | None = None


def load_verifier_key(text: str) -> VerifierKey:
    """Read a public key given as PEM or as a note verifier key (``name+hex+base64``)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise InvalidCheckpoint(f"the public key is not a readable PEM key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidCheckpoint(f"the public key is {type(key).__name__}, not Ed25519")
        return VerifierKey(key)
    name, _, rest = text.partition("+")
    hex_id, _, b64 = rest.partition("+")
    try:
        raw = base64.b64decode(b64, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raw, wanted = b"", b""
    if not _valid_key_name(name) or len(wanted) != 4 or len(raw) != 33 or raw[:1] != _ALG_ED25519:
        raise InvalidCheckpoint("the public key is neither PEM nor an Ed25519 note verifier key (name+hex+base64)")
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, key) != wanted:
        raise InvalidCheckpoint(f"the verifier key's ID {hex_id} does not match its name and key")
    return VerifierKey(key, name)


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of a log's size and root hash (C2SP tlog-checkpoint, with a timestamp line)."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: dt.datetime | None = None
    extensions: tuple[str, ...] = field(default=())  # extension lines we do not interpret

    def body(self) -> str:
        """The note text that is signed: origin, size, base64 root, extension lines, final newline."""
        lines = [self.origin, str(self.tree_size), _b64(self.root_hash)]
        if self.timestamp is not None:
            lines.append("timestamp " + self.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        lines.extend(self.extensions)
        return "\n".join(lines) + "\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not ln for ln in lines[:-1]):
            raise InvalidCheckpoint("a checkpoint needs an origin, a size and a root hash line, each non-empty")
        origin, size_text, root_text, *ext = lines[:-1]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise InvalidCheckpoint(f"the checkpoint's tree size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            root = b""
        if len(root) != HASH_SIZE:
            raise InvalidCheckpoint(f"the checkpoint's root hash {root_text!r} is not a base64 SHA-256 hash")
        timestamp, others = None, []
        for line in ext:
            if line.startswith("timestamp ") and timestamp is None:
                try:
                    timestamp = dt.datetime.strptime(line[10:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
                except ValueError:
                    raise InvalidCheckpoint(f"the checkpoint's timestamp line {line!r} is malformed") from None
            else:
                others.append(line)
        return cls(origin, int(size_text), root, timestamp, tuple(others))


def sign_checkpoint(checkpoint: Checkpoint, private_key: Ed25519PrivateKey, key_name: str | None = None) -> str:
    """The checkpoint as a signed note: body, blank line, ``— <name> base64(key id || signature)``."""
    name = key_name or checkpoint.origin
    if not _valid_key_name(name):
        raise InvalidCheckpoint(f"invalid key name {name!r}: no spaces or '+'")
    return sign_note(checkpoint.body(), private_key, name)


def sign_note(text: str, private_key: Ed25519PrivateKey, name: str) -> str:
    """Sign ``text`` (ending in a newline) as a C2SP signed note with one Ed25519 signature."""
    if not text.endswith("\n"):
        raise InvalidCheckpoint("a note's text must end with a newline")
    sig = key_id(name, private_key.public_key()) + private_key.sign(text.encode("utf-8"))
    return f"{text}\n{_SIG_PREFIX}{name} {_b64(sig)}\n"


def open_note(note: str, key: VerifierKey, name: str) -> str:
    """The text of a signed note after checking its signature by ``key`` under ``name``."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise InvalidCheckpoint("a signed note must not contain control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise InvalidCheckpoint("not a signed note: no blank line before the signature lines")
    text, sigs = note[:split + 1], note[split + 2:]
    wanted = key_id(name, key.public_key)
    found = False
    for line in sigs.splitlines():
        if not line.startswith(_SIG_PREFIX):
            raise InvalidCheckpoint(f"malformed signature line {line!r}")
        sig_name, _, b64 = line[len(_SIG_PREFIX):].partition(" ")
        try:
            sig = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise InvalidCheckpoint(f"the signature of {sig_name!r} is not valid base64") from None
        if sig_name != name or sig[:4] != wanted:
            continue  # another key's signature (a witness, or a rotated key): not ours to judge
        try:
            key.public_key.verify(sig[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise InvalidCheckpoint(
                f"the signature by {name}+{wanted.hex()} does not verify: the checkpoint was altered or forged"
            ) from None
        found = True
    if not found:
        raise InvalidCheckpoint(f"the checkpoint is not signed by the key {name}+{wanted.hex()}")
    return text


def open_checkpoint(note: str, key: VerifierKey) -> Checkpoint:
    """Verify a signed checkpoint against a trusted key and return its content; raises InvalidCheckpoint."""
    split = note.rfind("\n\n")
    origin = note[:max(split, 0)].split("\n", 1)[0]
    text = open_note(note, key, key.name or origin)
    return Checkpoint.parse_body(text)


# --- the offline audit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditResult:
    """What an auditor has established about one entry file."""

    checkpoint: Checkpoint
    leaf_index: int
    leaf: dict[str, Any]  # the parsed entry file (numbers exact)

    def summary(self) -> str:
        when = self.checkpoint.timestamp.strftime("%Y-%m-%d %H:%M:%SZ") if self.checkpoint.timestamp else "?"
        return (f"OK: entry {self.leaf.get('entry_id')} ({self.leaf.get('event')} recorded "
                f"{self.leaf.get('recorded_at')}, leaf {self.leaf_index}) is in {self.checkpoint.origin} "
                f"at tree size {self.checkpoint.tree_size}, root {self.checkpoint.root_hash.hex()}, signed {when}")


def audit_entry(checkpoint_note: str, proof: InclusionProof, entry: bytes, key: VerifierKey) -> AuditResult:
    """Check offline that ``entry`` (the exported leaf bytes) is in the log the signed checkpoint describes.

    Steps: the checkpoint's signature verifies with the trusted key; the proof is for that log and
    tree size; the entry file is canonical JSON (byte for byte as exported) recording the proof's
    leaf index; and its leaf hash, SHA-256(0x00 || file), leads through the audit path to the signed
    root. Raises InvalidCheckpoint or InvalidProof naming the failed step.
    """
    cp = open_checkpoint(checkpoint_note, key)
    if proof.origin != cp.origin:
        raise InvalidProof(f"the proof is for log {proof.origin!r}, the checkpoint for {cp.origin!r}")
    if proof.tree_size != cp.tree_size:
        raise InvalidProof(f"the proof is for tree size {proof.tree_size}, the checkpoint for {cp.tree_size}")
    try:
        leaf = parse_canonical(entry)
    except ValueError as exc:
        raise InvalidProof(f"the entry file is not JSON: {exc}") from None
    if not isinstance(leaf, dict) or canonical_json(leaf) != entry:
        raise InvalidProof("the entry file is not the canonical JSON the log hashed (was it re-formatted? "
                           "use the file exactly as exported)")
    if leaf.get("leaf_index") != proof.leaf_index:
        raise InvalidProof(f"the entry file records leaf {leaf.get('leaf_index')}, the proof leaf {proof.leaf_index}")
    h = leaf_hash(entry)
    if h != proof.leaf_hash:
        raise InvalidProof("the entry file does not hash to the proof's leaf hash: its content differs from the log's")
    verify_inclusion(h, proof.leaf_index, cp.tree_size, proof.audit_path, cp.root_hash)
    return AuditResult(cp, proof.leaf_index, leaf)


def audit_consistency(old_note: str, new_note: str, proof: ConsistencyProof,
                      key: VerifierKey) -> tuple[Checkpoint, Checkpoint]:
    """Check offline that the newer signed checkpoint extends the older one (nothing removed or rewritten)."""
    old, new = open_checkpoint(old_note, key), open_checkpoint(new_note, key)
    if not old.origin == new.origin == proof.origin:
        raise InvalidProof(f"the checkpoints and the proof are for different logs: {old.origin!r}, {new.origin!r}, "
                           f"{proof.origin!r}")
    if (proof.first, proof.second) != (old.tree_size, new.tree_size):
        raise InvalidProof(f"the proof is for sizes {proof.first} -> {proof.second}, the checkpoints are "
                           f"{old.tree_size} -> {new.tree_size}")
    verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof.consistency)
    return old, new
