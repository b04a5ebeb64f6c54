"""RFC 6962 Merkle trees: leaf and node hashes, the tree, inclusion and consistency proofs and their
verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2). Pure: no database, no files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..errors import InvalidProof

HASH_SIZE = 32  # bytes of a SHA-256 digest
#: MTH({}) of RFC 6962: the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


# --- hashing -------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()



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


