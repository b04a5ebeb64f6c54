"""Keys and signed checkpoints: a C2SP ``tlog-checkpoint`` in a C2SP ``signed-note`` signed with Ed25519,
key ID SHA-256(key name || 0x0A || 0x01 || public key)[:4] (the format of Go's ``golang.org/x/mod/sumdb/note``)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import InvalidCheckpoint
from .proofs import b64
from .rfc6962 import HASH_SIZE

_SIG_PREFIX = "\u2014 "  # em dash, space: a signed note's signature line (C2SP signed-note)
_ALG_ED25519 = b"\x01"



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
    return f"{name}+{key_id(name, public_key).hex()}+{b64(_ALG_ED25519 + raw)}"


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
        lines = [self.origin, str(self.tree_size), b64(self.root_hash)]
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
    return f"{text}\n{_SIG_PREFIX}{name} {b64(sig)}\n"


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


