"""The ledger's pure half: RFC 6962 trees and proofs against the Certificate Transparency test vectors,
canonical JSON, signed-note checkpoints against Go's reference vector, and the offline audit."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scope3lib import ledger
from scope3lib.errors import InvalidCheckpoint, InvalidProof
from scope3lib.ledger import (
    Checkpoint,
    InclusionProof,
    MerkleTree,
    VerifierKey,
    canonical_json,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 6962 test vectors -----------------------------------------------------------------------
# The reference tree of the Certificate Transparency implementations (originally C++
# cpp/merkletree/merkletree_test.cc), as published in transparency-dev/merkle:
# testonly/constants.go (LeafInputs, RootHashes) and proof/verify_test.go (inclusionProofs,
# consistencyProofs). Leaf numbers in the Go vectors are 1-based; here they are 0-based indices.

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def h(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree.from_leaves(LEAVES)


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_the_certificate_transparency_vectors(tree: MerkleTree, size: int) -> None:
    assert tree.root(size).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_vectors_and_verify(tree: MerkleTree, index: int, size: int,
                                                       path: list[str]) -> None:
    assert tree.inclusion_proof(index, size) == h(path)
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, h(path), bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors_and_verify(tree: MerkleTree, old: int, new: int,
                                                         proof: list[str]) -> None:
    assert tree.consistency_proof(old, new) == h(proof)
    verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), h(proof))


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ 8]) + out[i][1:]
    return out


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int, path: list[str]) -> None:
    # The probes of transparency-dev/merkle proof/verify_test.go (corruptInclusionProof).
    proof, root, leaf = h(path), bytes.fromhex(ROOTS[size]), leaf_hash(LEAVES[index])
    probes = [
        (index - 1, size, root, leaf, proof), (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof), (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof), (index, size, root, b"WrongLeaf", proof),
        (index, size, ledger.EMPTY_ROOT, leaf, proof), (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]), (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]), (index, size, root, leaf, [root, *proof]),
        (index, size, root, leaf, proof[:-1]), (index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]),
        *[(index, size, root, leaf, _flip(proof, i)) for i in range(len(proof))],
    ]
    for i, s, r, lf, p in probes:
        with pytest.raises(InvalidProof):
            verify_inclusion(lf, i, s, p, r)


@pytest.mark.parametrize(("old", "new", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_are_refused(old: int, new: int, proof: list[str]) -> None:
    # The probes of transparency-dev/merkle proof/verify_test.go (corruptConsistencyProof).
    p, r1, r2 = h(proof), bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    probes = [
        (old - 1, new, r1, r2, p), (old + 1, new, r1, r2, p), (old ^ 2, new, r1, r2, p),
        (old, new * 2, r1, r2, p), (old, new // 2, r1, r2, p), (old, new, b"WrongRoot", r2, p),
        (old, new, r1, b"WrongRoot", p), (old, new, r2, r1, p), (old, new, r1, r2, []),
        (old, new, r1, r2, [*p, b""]), (old, new, r1, r2, [*p, r1]), (old, new, r1, r2, [*p, r2]),
        (old, new, r1, r2, [b"", *p]), (old, new, r1, r2, [r1, *p]), (old, new, r1, r2, [r2, *p]),
        (old, new, r1, r2, [p[0], *p]), (old, new, r1, r2, p[:-1]),
        *[(old, new, r1, r2, _flip(p, i)) for i in range(len(p))],
    ]
    for s1, s2, a, b, q in probes:
        with pytest.raises(InvalidProof):
            verify_consistency(s1, s2, a, b, q)


def test_consistency_edge_cases_of_the_go_verifier() -> None:
    # TestVerifyConsistency of transparency-dev/merkle proof/verify_test.go.
    root1, root2, empty = b"don't care 1", b"don't care 2", ledger.EMPTY_ROOT
    ok: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (0, 0, root1, root1, []), (0, 1, root1, root2, []), (1, 1, root2, root2, [])]
    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (0, 0, root1, root2, []), (1, 1, root1, root2, []), (1, 0, root1, root2, []), (2, 1, root1, root2, []),
        (1, 2, root1, root2, []), (0, 0, empty, root2, []), (1, 1, empty, root2, []),
        (0, 0, empty, empty, [empty]), (0, 1, empty, empty, [empty]), (1, 1, empty, empty, [empty])]
    for s1, s2, a, b, p in ok:
        verify_consistency(s1, s2, a, b, p)
    for s1, s2, a, b, p in bad:
        with pytest.raises(InvalidProof):
            verify_consistency(s1, s2, a, b, p)


# An independent, literal transcription of RFC 6962 section 2.1 (MTH, PATH, SUBPROOF), to check the
# tree's stored-level implementation on every size and index up to 40.
def _mth(d: list[bytes]) -> bytes:
    if not d:
        return ledger.EMPTY_ROOT
    if len(d) == 1:
        return leaf_hash(d[0])
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(_mth(d[:k]), _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return [*_path(m, d[:k]), _mth(d[k:])] if m < k else [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def test_every_proof_up_to_40_leaves_matches_rfc_6962_and_verifies() -> None:
    data = [bytes([i]) * (i % 5) for i in range(40)]
    tree = MerkleTree.from_leaves(data)
    for n in range(1, 41):
        root = tree.root(n)
        assert root == _mth(data[:n])
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == _path(m, data[:n])
            verify_inclusion(leaf_hash(data[m]), m, n, proof, root)
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ([] if m == n else _subproof(m, data[:n], True))
            verify_consistency(m, n, tree.root(m), root, proof)


def test_a_tree_grown_in_pieces_equals_one_built_at_once() -> None:
    hashes = b"".join(leaf_hash(bytes([i % 256, i // 256])) for i in range(1000))
    whole = MerkleTree(hashes)
    grown = MerkleTree()
    pos = 0
    for step in (1, 3, 64, 5, 200, 7, 720):
        grown.append(hashes[pos:pos + 32 * step])
        pos += 32 * step
    assert pos == len(hashes) and grown.size == whole.size == 1000
    assert grown.root() == whole.root() == _mth([bytes([i % 256, i // 256]) for i in range(1000)])
    assert grown.inclusion_proof(777) == whole.inclusion_proof(777)


# --- canonical JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ({"b": 1, "a": 2, "A": 3, "é": 4}, '{"A":3,"a":2,"b":1,"é":4}'),  # code point order
    ({"x": None, "y": [None, 1]}, '{"y":[null,1]}'),  # null members omitted, null elements kept
    ("quote\" back\\ tab\t nl\n cr\r ff\f bs\b ctl\x01 del\x7f é 😀 \u2028",
     '"quote\\" back\\\\ tab\\t nl\\n cr\\r ff\\f bs\\b ctl\\u0001 del\x7f é 😀 \u2028"'),
    (1.0, "1"), (0.1, "0.1"), (-0.0, "0"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"),
    (123456789012345680000.0, "123456789012345680000"), (2.5e-5, "0.000025"), (-1.5, "-1.5"),
    (1 / 3, "0.3333333333333333"), (Decimal("1234.50"), "1234.5"), (Decimal("1E+2"), "100"),
    (Decimal("-0.000"), "0"), (Decimal("12345678901234567890.123456789"), "12345678901234567890.123456789"),
    (10**30, "1000000000000000000000000000000"), (float("nan"), '"NaN"'), (float("-inf"), '"-Infinity"'),
    (True, "true"), (dt.date(2025, 1, 31), '"2025-01-31"'),
    (dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC), '"2025-01-01T12:00:00+00:00"'),
    (dt.datetime(2025, 1, 1, 13, 0, 0, 120000, tzinfo=dt.timezone(dt.timedelta(hours=1))),
     '"2025-01-01T12:00:00.12+00:00"'),
    (dt.datetime(2025, 1, 1, 12, 0, 0, 5), '"2025-01-01T12:00:00.000005"'),
])
def test_canonical_json(value: object, expected: str) -> None:
    assert canonical_json(value) == expected.encode()


def test_canonical_json_is_a_fixed_point_of_parsing() -> None:
    data = canonical_json({"n": [0.1, 1e300, 5e-324, Decimal("1.10")], "s": "é\n", "o": {"z": 1, "a": None}})
    assert canonical_json(ledger.parse_canonical(data)) == data


def test_leaf_data_layout() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=dt.UTC)
    data = ledger.leaf_data(tenant_id=7, leaf_index=3, entry_id=42, event="correct", actor="r", reason=None,
                            recorded_at=at, entry={"id": 42, "kg_co2e": 1.5})
    assert data == (b'{"actor":"r","entry":{"id":42,"kg_co2e":1.5},"entry_id":42,"event":"correct","leaf_index":3,'
                    b'"recorded_at":"2026-01-02T03:04:05.000060Z","tenant_id":7}')


# --- signed notes and checkpoints ----------------------------------------------------------------
# The example of golang.org/x/mod/sumdb/note (note.go's package documentation): a signer key, its
# verifier key, a text and the signed note Go produces. Ed25519 signatures are deterministic, so
# signing the text with the same key must give the same bytes.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
                     "ngotpRZb6KE6RyyBwJnAM=\n")


def _go_private_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])  # 0x01 (Ed25519) then the 32-byte seed
    assert seed[0] == 1
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def test_signed_notes_match_gos_reference_vector() -> None:
    key = _go_private_key()
    assert ledger.sign_note(GO_TEXT, key, "PeterNeumann") == GO_NOTE
    assert ledger.verifier_key("PeterNeumann", key.public_key()) == GO_VKEY
    assert ledger.open_note(GO_NOTE, ledger.load_verifier_key(GO_VKEY), "PeterNeumann") == GO_TEXT
    with pytest.raises(InvalidCheckpoint, match="does not verify"):
        ledger.open_note(GO_NOTE.replace("cryptography", "blockchain"), ledger.load_verifier_key(GO_VKEY),
                         "PeterNeumann")


def test_verifier_key_with_a_wrong_id_is_refused() -> None:
    with pytest.raises(InvalidCheckpoint, match="does not match"):
        ledger.load_verifier_key(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(InvalidCheckpoint, match="neither PEM"):
        ledger.load_verifier_key("not a key")


@pytest.fixture(scope="module")
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _checkpoint(tree: MerkleTree, size: int | None = None) -> Checkpoint:
    return Checkpoint("example.org/test-log", tree.size if size is None else size, tree.root(size),
                      dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC))


def test_checkpoint_round_trip(tree: MerkleTree, signer: Ed25519PrivateKey) -> None:
    note = ledger.sign_checkpoint(_checkpoint(tree), signer)
    lines = note.split("\n")
    assert lines[:4] == ["example.org/test-log", "8", base64.b64encode(tree.root()).decode(),
                         "timestamp 2026-11-27T10:00:00Z"]
    assert lines[4] == "" and lines[5].startswith("\u2014 example.org/test-log ")
    for key in (VerifierKey(signer.public_key()),
                ledger.load_verifier_key(ledger.public_key_pem(signer.public_key())),
                ledger.load_verifier_key(ledger.verifier_key("example.org/test-log", signer.public_key()))):
        assert ledger.open_checkpoint(note, key) == _checkpoint(tree)


def test_forged_checkpoints_fail_the_signature_check(tree: MerkleTree, signer: Ed25519PrivateKey) -> None:
    note = ledger.sign_checkpoint(_checkpoint(tree), signer)
    key = VerifierKey(signer.public_key())
    root = base64.b64encode(tree.root()).decode()
    forged_root = note.replace(root, base64.b64encode(tree.root(7)).decode())
    forged_size = note.replace("\n8\n", "\n9\n")
    for forged in (forged_root, forged_size, note.replace("10:00:00Z", "11:00:00Z")):
        with pytest.raises(InvalidCheckpoint, match="does not verify"):
            ledger.open_checkpoint(forged, key)
    # Signed by someone else with the right name: not our key, so not accepted.
    impostor = ledger.sign_checkpoint(_checkpoint(tree), Ed25519PrivateKey.generate())
    with pytest.raises(InvalidCheckpoint, match="not signed by"):
        ledger.open_checkpoint(impostor, key)
    with pytest.raises(InvalidCheckpoint, match="not a signed note"):
        ledger.open_checkpoint(note.replace("\n\n", "\n"), key)


# --- the offline audit ---------------------------------------------------------------------------


def _log(n: int) -> list[bytes]:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [ledger.leaf_data(tenant_id=1, leaf_index=i, entry_id=100 + i, event="create", actor="t_rw", reason=None,
                             recorded_at=at + dt.timedelta(seconds=i),
                             entry={"id": 100 + i, "kg_co2e": 10.5 * i, "period_start": "2025-01-01"})
            for i in range(n)]


def test_audit_accepts_the_exported_files_and_refuses_altered_ones(signer: Ed25519PrivateKey) -> None:
    leaves = _log(13)
    tree = MerkleTree.from_leaves(leaves)
    note = ledger.sign_checkpoint(Checkpoint("example.org/l", 13, tree.root()), signer)
    key = ledger.load_verifier_key(ledger.public_key_pem(signer.public_key()))
    proof = InclusionProof("example.org/l", 6, 13, leaf_hash(leaves[6]), tuple(tree.inclusion_proof(6)))
    proof = InclusionProof.from_json(proof.to_json())  # through the file format
    result = ledger.audit_entry(note, proof, leaves[6], key)
    assert result.leaf["entry_id"] == 106 and result.checkpoint.tree_size == 13

    changed = leaves[6].replace(b'"kg_co2e":63', b'"kg_co2e":6.3')
    with pytest.raises(InvalidProof, match="does not hash"):
        ledger.audit_entry(note, proof, changed, key)
    pretty = json.dumps(json.loads(leaves[6]), indent=1).encode()
    with pytest.raises(InvalidProof, match="canonical"):
        ledger.audit_entry(note, proof, pretty, key)
    with pytest.raises(InvalidProof, match="records leaf 7"):
        ledger.audit_entry(note, proof, leaves[7], key)
    other = InclusionProof("example.org/l", 6, 12, proof.leaf_hash, tuple(tree.inclusion_proof(6, 12)))
    with pytest.raises(InvalidProof, match="tree size 12"):
        ledger.audit_entry(note, other, leaves[6], key)
    bad_path = InclusionProof("example.org/l", 6, 13, proof.leaf_hash, (SOME_HASH, *proof.audit_path[1:]))
    with pytest.raises(InvalidProof, match="does not lead"):
        ledger.audit_entry(note, bad_path, leaves[6], key)
    forged = note.replace("\n13\n", "\n12\n")
    with pytest.raises(InvalidCheckpoint):
        ledger.audit_entry(forged, proof, leaves[6], key)


def test_audit_of_consistency(signer: Ed25519PrivateKey) -> None:
    leaves = _log(20)
    tree = MerkleTree.from_leaves(leaves)
    old = ledger.sign_checkpoint(Checkpoint("example.org/l", 11, tree.root(11)), signer)
    new = ledger.sign_checkpoint(Checkpoint("example.org/l", 20, tree.root()), signer)
    key = VerifierKey(signer.public_key())
    proof = ledger.ConsistencyProof("example.org/l", 11, 20, tuple(tree.consistency_proof(11)))
    _, checked = ledger.audit_consistency(old, new, ledger.ConsistencyProof.from_json(proof.to_json()), key)
    assert checked.tree_size == 20
    # A log that rewrote leaf 3 after the old checkpoint cannot prove itself consistent with it.
    rewritten = MerkleTree.from_leaves([*leaves[:3], leaves[3].replace(b"31.5", b"3.15"), *leaves[4:]])
    new2 = ledger.sign_checkpoint(Checkpoint("example.org/l", 20, rewritten.root()), signer)
    proof2 = ledger.ConsistencyProof("example.org/l", 11, 20, tuple(rewritten.consistency_proof(11)))
    with pytest.raises(InvalidProof):
        ledger.audit_consistency(old, new2, proof2, key)
