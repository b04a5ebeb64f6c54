"""The tamper-evident ledger: a Merkle log of every change to a tenant's emission entries.

RFC 6962 hashing, inclusion and consistency proofs, signed checkpoints (C2SP signed notes, Ed25519) and
the offline audit live in :mod:`.merkle` and need no database; :mod:`.log` keeps each tenant's log in
PostgreSQL, verifies it, signs checkpoints and builds proof bundles.
"""

from .merkle import (
    EMPTY_ROOT,
    EVENTS,
    HASH_SIZE,
    AuditResult,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    MerkleTree,
    VerifierKey,
    audit_consistency,
    audit_entry,
    canonical_json,
    format_number,
    key_id,
    leaf_data,
    leaf_hash,
    load_verifier_key,
    node_hash,
    open_checkpoint,
    open_note,
    parse_canonical,
    public_key_pem,
    recorded_at_text,
    root_from_inclusion_proof,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT", "EVENTS", "HASH_SIZE", "AuditResult", "Checkpoint", "ConsistencyProof", "InclusionProof",
    "MerkleTree", "VerifierKey", "audit_consistency", "audit_entry", "canonical_json", "format_number", "key_id",
    "leaf_data", "leaf_hash", "load_verifier_key", "node_hash", "open_checkpoint", "open_note", "parse_canonical",
    "public_key_pem", "recorded_at_text", "root_from_inclusion_proof", "sign_checkpoint", "sign_note",
    "verifier_key", "verify_consistency", "verify_inclusion",
]  # fmt: skip
