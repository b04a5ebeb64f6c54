"""The offline audit: an entry file and its inclusion proof against a signed checkpoint, and two checkpoints
against each other, with nothing but the tenant's public key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidProof
from .canonical import canonical_json, parse_canonical
from .notes import Checkpoint, VerifierKey, open_checkpoint
from .proofs import ConsistencyProof, InclusionProof
from .rfc6962 import leaf_hash, verify_consistency, verify_inclusion

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
