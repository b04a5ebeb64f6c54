"""The tamper-evident ledger: a Merkle log of every change to a tenant's emission entries.

The pure half needs no database, so an auditor verifies a proof offline with the checkpoint, the proof, the
entry file and the tenant's public key: :mod:`.rfc6962` (hashes, the tree, proofs and their verification),
:mod:`.canonical` (the exact bytes of a leaf), :mod:`.proofs` (proofs as JSON files), :mod:`.notes` (keys
and signed checkpoints) and :mod:`.audit` (the offline audit). :mod:`.log` keeps each tenant's log in
PostgreSQL, verifies it, signs checkpoints and builds proof bundles.
"""

from .audit import AuditResult, audit_consistency, audit_entry
from .canonical import EVENTS, canonical_json, format_number, leaf_data, parse_canonical, recorded_at_text
from .notes import (
    Checkpoint,
    VerifierKey,
    key_id,
    load_verifier_key,
    open_checkpoint,
    open_note,
    public_key_pem,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from .proofs import ConsistencyProof, InclusionProof
from .rfc6962 import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
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
