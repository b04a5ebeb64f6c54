"""The tamper-evident ledger, database half: each tenant's append-only log, checkpoints, proofs, verification.

The log is written by PostgreSQL itself (migration 0004): every INSERT, UPDATE and DELETE of
``emission_entries`` appends one leaf per row through a trigger, whoever sends it, so nothing here
appends. This module signs checkpoints of the log with the tenant's Ed25519 key, hands out inclusion
and consistency proofs, and verifies the whole log against the current entries and the signed
checkpoints (:func:`verify`, which dashboards and reports call with the tenant's own engine).

The signing key is a file, ``DATA_DIR/tenants/<slug>/ledger_ed25519.pem`` (mode 0600), next to the
tenant's secrets, and never in the database: whoever can rewrite the database (a leaked admin URL, a
database superuser) must not also be able to sign a checkpoint over the rewritten history, and the
tenant's analysts, who get database credentials only, cannot read it. The public key is registered in
``ledger_keys`` so that tenant roles can check signatures; an auditor should pin the key exported by
``scope3 ledger public-key`` instead of trusting the database's copy.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection, Engine

from .. import schema, tenancy
from ..errors import InvalidCheckpoint, LedgerError, LedgerInconsistent, UnknownTenant
from .canonical import parse_canonical
from .notes import Checkpoint, VerifierKey, key_id, open_checkpoint, sign_checkpoint
from .proofs import ConsistencyProof, InclusionProof
from .rfc6962 import MerkleTree, leaf_hash

KEY_FILE = "ledger_ed25519.pem"
#: Session settings the canonical form depends on; the trigger function pins the same (migration 0004).
SESSION_SETTINGS = (
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("bytea_output", "hex"),
)
_MAX_LISTED = 1000  # discrepancies of one kind named individually; more are counted
#: The events of an emission entry's changes; the log also holds decisions on supplier submissions (``approve``,
#: ``reject``: migration 0010), whose ``entry_id`` is the submission's and which no entry is compared with.
ENTRY_EVENTS = ("create", "correct", "recalculate", "delete")
DECISION_EVENTS = ("approve", "reject")
ENTRY_EVENTS_SQL = ", ".join(f"'{e}'" for e in ENTRY_EVENTS)


class Kind(StrEnum):
    """What a discrepancy is."""

    CHANGED = "changed"  # the entry's current content is not what the log last recorded for it
    UNLOGGED = "unlogged"  # the entry has no leaf at all
    MISSING = "missing"  # a leaf without its entry: the log's last record of it is not a deletion
    UNDELETED = "undeleted"  # the entry exists although the log's last record of it is a deletion
    LEAF_ALTERED = "leaf_altered"  # a leaf no longer hashes to the hash recorded when it was appended
    LEAF_MISSING = "leaf_missing"  # a gap in the leaf indices, or fewer leaves than the log head counted
    CHECKPOINT = "checkpoint"  # a signed checkpoint that fails its signature or no longer matches the log


@dataclass(frozen=True)
class Discrepancy:
    kind: Kind
    message: str
    entry_id: int | None = None
    leaf_index: int | None = None


@dataclass(frozen=True)
class CheckpointStatus:
    """A stored checkpoint and whether it still holds."""

    id: int
    tree_size: int
    root_hash: bytes
    signed_at: dt.datetime
    key_id: str
    note: str
    problem: str | None = None  # None when its signature verifies and the log still has its root

    @property
    def valid(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class LedgerReport:
    """The state of one tenant's ledger: what :func:`verify` found.

    ``verified`` counts the entries whose current content is exactly what the log last recorded for
    them *and* whose last change is covered by a signed checkpoint that (with every earlier one) still
    verifies; ``verified_share`` is that over all current entries (1.0 when there are none).
    """

    tenant: str
    log_size: int  # leaves in the log
    entries: int  # current emission entries
    verified: int
    verified_size: int  # leaves covered by the newest checkpoint that, with all before it, verifies
    last_checkpoint: CheckpointStatus | None
    discrepancies: tuple[Discrepancy, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    @property
    def verified_share(self) -> float:
        return self.verified / self.entries if self.entries else 1.0

    def summary(self) -> str:
        """Human-readable lines: the state, then one line per discrepancy."""
        cp = self.last_checkpoint
        if cp is None:
            cp_text = "no checkpoint yet"
        else:
            cp_text = (f"last checkpoint {cp.signed_at:%Y-%m-%d %H:%M:%SZ} at {cp.tree_size} leaves "
                       f"({'valid' if cp.valid else 'INVALID'})")
        lines = [
            f"tenant {self.tenant}: {self.log_size} leaves, {self.entries} entries, {self.verified} verified "
            f"({self.verified_share:.1%}); {cp_text}; "
            + (f"{len(self.discrepancies)} discrepancies" if self.discrepancies else "no discrepancies"),
        ]
        lines.extend(f"{d.kind.value}: {d.message}" for d in self.discrepancies)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        cp = self.last_checkpoint
        return {
            "tenant": self.tenant, "log_size": self.log_size, "entries": self.entries, "verified": self.verified,
            "verified_share": self.verified_share, "verified_size": self.verified_size,
            "last_checkpoint": None if cp is None else {
                "tree_size": cp.tree_size, "root_hash": cp.root_hash.hex(), "signed_at": cp.signed_at.isoformat(),
                "key_id": cp.key_id, "valid": cp.valid, "problem": cp.problem,
            },
            "discrepancies": [{"kind": d.kind.value, "entry_id": d.entry_id, "leaf_index": d.leaf_index,
                               "message": d.message} for d in self.discrepancies],
        }

    def discrepancies_frame(self) -> Any:
        """The discrepancies as a pandas DataFrame (kind, entry_id, leaf_index, message) for a panel."""
        import pandas as pd

        return pd.DataFrame([{"kind": d.kind.value, "entry_id": d.entry_id, "leaf_index": d.leaf_index,
                              "message": d.message} for d in self.discrepancies],
                            columns=["kind", "entry_id", "leaf_index", "message"])


# --- annotating changes --------------------------------------------------------------------------


def annotate(conn: Connection, event: str | None = None, reason: str | None = None) -> None:
    """Label the ledger records of the rest of this transaction.

    ``event`` is how UPDATEs are recorded: ``"correct"`` (the default) or ``"recalculate"`` (a new
    factor or method, not a data fix); ``reason`` is stored with every leaf the transaction appends.
    Inserts are always ``create`` and deletes ``delete``. Transaction-local, like ``SET LOCAL``.
    """
    if event is not None and event not in ("correct", "recalculate"):
        raise LedgerError(f"unknown ledger event {event!r} for an update: use 'correct' or 'recalculate'")
    conn.execute(sa.text("SELECT set_config('scope3.ledger_event', :e, true), set_config('scope3.ledger_reason', :r, "
                         "true)"), {"e": event or "", "r": reason or ""})


# --- the log as stored ---------------------------------------------------------------------------


def _canonical_session(conn: Connection) -> None:
    for name, value in (*SESSION_SETTINGS, *_FAST):
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


# Verification queries are few and long: JIT compilation costs seconds (measured 1.4 s of an 8 s
# comparison of 1,000,000 entries) and saves nothing here.
_FAST = (("jit", "off"),)


def _tenant(conn: Connection, slug: str | None) -> tuple[int, str]:
    if slug is not None:
        tid = conn.scalar(sa.text("SELECT id FROM tenants WHERE slug = :s"), {"s": slug})
        if tid is None:
            raise UnknownTenant(slug)
        return int(tid), slug
    row = conn.execute(sa.text("SELECT t.id, t.slug FROM tenants t WHERE t.id = tenant_of(current_user)")).first()
    if row is None:
        raise LedgerError("this connection is not a tenant's role: pass the tenant's slug when using the admin engine")
    return int(row.id), str(row.slug)


def origin(conn: Connection, slug: str) -> str:
    """The log's name in its checkpoints: ``scope3-ledger/<installation prefix>/<slug>``."""
    return f"scope3-ledger/{schema.role_prefix(conn)}/{slug}"


# One chunk of the log: every leaf's hash recomputed from its columns (materialised first, so the
# ordered aggregate sorts 40-byte rows, not the leaves), and the leaves whose recorded hash differs.
_LEAF_HASHES_SQL = r"""
WITH l AS MATERIALIZED (
    SELECT leaf_index, leaf_hash,
           sha256('\x00'::bytea || ledger_leaf_data(tenant_id, leaf_index, entry_id, event, actor, reason,
                                                    recorded_at, entry)) AS h
      FROM ledger_leaves
     WHERE tenant_id = :t AND leaf_index >= :lo AND leaf_index < :hi)
SELECT coalesce(string_agg(h, ''::bytea ORDER BY leaf_index), ''::bytea) AS hashes,
       array_agg(leaf_index) FILTER (WHERE h <> leaf_hash) AS altered
  FROM l"""
_CHUNK = 1 << 16  # leaves per query: the tree grows in Python while PostgreSQL hashes the next chunk
# The hashes recorded when the leaves were appended, for proofs: the tree they give is checked against
# the signed root, and the proved leaf's content against its own recorded hash.
_STORED_HASHES_SQL = r"""
SELECT coalesce(string_agg(leaf_hash, ''::bytea ORDER BY leaf_index), ''::bytea) AS hashes,
       NULL::bigint[] AS altered
  FROM ledger_leaves
 WHERE tenant_id = :t AND leaf_index >= :lo AND leaf_index < :hi"""

# For each altered leaf: was it moved? Its row hashes to its recorded hash at another altered position.
_MOVED_SQL = r"""
SELECT l.leaf_index, l.entry_id, l.event,
       (SELECT c FROM unnest(CAST(:alt AS bigint[])) AS c
         WHERE c <> l.leaf_index
           AND sha256('\x00'::bytea || ledger_leaf_data(l.tenant_id, c, l.entry_id, l.event, l.actor, l.reason,
                                                        l.recorded_at, l.entry)) = l.leaf_hash
         LIMIT 1) AS appended_at
  FROM ledger_leaves l
 WHERE l.tenant_id = :t AND l.leaf_index = ANY(CAST(:alt AS bigint[]))
 ORDER BY l.leaf_index"""


@dataclass
class _LogState:
    tree: MerkleTree
    discrepancies: list[Discrepancy]


def _log_state(lanes: Sequence[Connection], tid: int, upto: int | None = None) -> _LogState:
    """The tree over the leaves as they are now, recomputed from their columns, and what is wrong with them.

    ``lanes`` are connections in one snapshot (see :func:`_snapshot_lanes`); the first also runs the
    small queries.
    """
    conn = lanes[0]
    bound = upto if upto is not None else 2**62
    row = conn.execute(sa.text("SELECT count(*) AS n, coalesce(max(leaf_index), -1) AS max_index FROM ledger_leaves "
                               "WHERE tenant_id = :t AND leaf_index < :upto"), {"t": tid, "upto": bound}).one()
    found: list[Discrepancy] = []
    n, max_index = int(row.n), int(row.max_index)
    if n != max_index + 1:
        missing = conn.scalars(sa.text(
            "SELECT i FROM generate_series(0, CAST(:m AS bigint)) AS i WHERE NOT EXISTS "
            "(SELECT 1 FROM ledger_leaves WHERE tenant_id = :t AND leaf_index = i) ORDER BY i LIMIT :k"),
            {"m": max_index, "t": tid, "k": _MAX_LISTED}).all()
        found += [Discrepancy(Kind.LEAF_MISSING, f"leaf {i} is missing from the log (leaves {max_index + 1 - n} "
                                                 "fewer than their indices say)", leaf_index=int(i)) for i in missing]
    if upto is None:
        head = conn.scalar(sa.text("SELECT size FROM ledger_heads WHERE tenant_id = :t"), {"t": tid}) or 0
        if head != n:
            found.append(Discrepancy(Kind.LEAF_MISSING, f"the log head counted {head} leaves appended but the log "
                                                        f"holds {n}"))
    tree, altered = _recompute(lanes, tid, max_index + 1)
    if altered:
        alt = sorted(altered)[:_MAX_LISTED]
        for r in conn.execute(sa.text(_MOVED_SQL), {"t": tid, "alt": alt}):
            what = f"leaf {r.leaf_index} (entry {r.entry_id}, {r.event})"
            if r.appended_at is not None:
                msg = f"{what} was moved: it was appended at position {r.appended_at}"
            else:
                msg = f"{what} no longer hashes to the hash recorded when it was appended: its content was altered"
            found.append(Discrepancy(Kind.LEAF_ALTERED, msg, entry_id=int(r.entry_id), leaf_index=int(r.leaf_index)))
        if len(altered) > len(alt):
            found.append(Discrepancy(Kind.LEAF_ALTERED, f"... and {len(altered) - len(alt)} more altered leaves"))
    return _LogState(tree, found)


def _recompute(lanes: Sequence[Connection], tid: int, end: int,
               sql: str = _LEAF_HASHES_SQL) -> tuple[MerkleTree, list[int]]:
    """Leaf hashes of leaves [0, end) recomputed in PostgreSQL, chunk by chunk, while the tree grows here.

    Each lane (a connection, all in one snapshot) has a thread that runs its share of the chunk
    queries, waiting on the socket without the GIL, so the PostgreSQL backends hash the leaves on
    their cores while this thread hashes the tree's interior nodes. A connection is used by its
    lane's thread alone until that thread has finished.
    """
    starts = list(range(0, end, _CHUNK))
    results: list[Future[Any]] = [Future() for _ in starts]

    def lane(k: int, conn: Connection) -> None:
        for i in range(k, len(starts), len(lanes)):
            try:
                bounds = {"t": tid, "lo": starts[i], "hi": min(end, starts[i] + _CHUNK)}
                results[i].set_result(conn.execute(sa.text(sql), bounds).one())
            except BaseException as exc:  # handed to the consumer, which raises it
                for j in range(i, len(starts), len(lanes)):
                    results[j].set_exception(exc)
                return

    threads = [threading.Thread(target=lane, args=(k, c), name=f"ledger-lane-{k}", daemon=True)
               for k, c in enumerate(lanes[:len(starts)])]
    for t in threads:
        t.start()
    tree, altered = MerkleTree(), list[int]()
    try:
        for result in results:
            item = result.result()
            tree.append(bytes(item.hashes))
            altered += item.altered or []
    finally:
        for t in threads:
            t.join()
    return tree, altered


_SNAPSHOT_RE = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
_LANES = 2  # connections recomputing leaf hashes in parallel: a PostgreSQL backend each


@contextmanager
def _snapshot_lanes(engine: Engine, conn: Connection, extra: int = _LANES - 1) -> Iterator[list[Connection]]:
    """``conn`` (in a REPEATABLE READ transaction) and ``extra`` more connections that see its snapshot."""
    snapshot = str(conn.scalar(sa.text("SELECT pg_export_snapshot()")))
    if not _SNAPSHOT_RE.match(snapshot):
        raise LedgerError(f"unexpected snapshot id {snapshot!r} from pg_export_snapshot()")
    with ExitStack() as stack:
        lanes = [conn]
        for _ in range(extra):
            other = stack.enter_context(engine.connect()).execution_options(isolation_level="REPEATABLE READ")
            stack.enter_context(other.begin())
            other.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            lanes.append(other)
        for lane in lanes:
            _canonical_session(lane)
        yield lanes


def _keys(conn: Connection, tid: int) -> dict[str, VerifierKey]:
    rows = conn.execute(sa.text("SELECT key_id, key_name, public_key FROM ledger_keys WHERE tenant_id = :t"),
                        {"t": tid})
    return {r.key_id: VerifierKey(Ed25519PublicKey.from_public_bytes(bytes(r.public_key)), r.key_name) for r in rows}


def _checkpoints(conn: Connection, tid: int, tree: MerkleTree) -> list[CheckpointStatus]:
    """Every stored checkpoint, oldest first, each checked against its key and the recomputed tree."""
    keys = _keys(conn, tid)
    out = []
    rows = conn.execute(sa.text("SELECT id, tree_size, root_hash, signed_at, key_id, note FROM ledger_checkpoints "
                                "WHERE tenant_id = :t ORDER BY id"), {"t": tid})
    for r in rows:
        problem = None
        key = keys.get(r.key_id)
        try:
            if key is None:
                raise InvalidCheckpoint(f"it names key {r.key_id}, which is not registered for this tenant")
            cp = open_checkpoint(r.note, key)
        except InvalidCheckpoint as exc:
            problem = str(exc)
        else:
            if cp.tree_size != r.tree_size or cp.root_hash != bytes(r.root_hash):
                problem = "its stored size or root differs from what its signed note says"
            elif cp.tree_size > tree.size:
                problem = f"it covers {cp.tree_size} leaves but the log now holds only {tree.size}"
            elif tree.root(cp.tree_size) != cp.root_hash:
                problem = f"the log's first {cp.tree_size} leaves no longer hash to the root it signed"
        out.append(CheckpointStatus(id=int(r.id), tree_size=int(r.tree_size), root_hash=bytes(r.root_hash),
                                    signed_at=r.signed_at, key_id=r.key_id, note=r.note, problem=problem))
    return out


def _verified_size(checkpoints: Sequence[CheckpointStatus]) -> int:
    size = 0
    for cp in checkpoints:
        if not cp.valid:
            break
        size = max(size, cp.tree_size)
    return size


def _entry_expression(conn: Connection, alias: str) -> str:
    """SQL rendering each row of emission_entries as canonical JSON (generated from the catalog)."""
    expr = str(conn.scalar(sa.text("SELECT ledger_entry_json_sql(:a)"), {"a": alias}))
    return expr.replace(":", r"\:")  # literal colons, not bind parameters, for sa.text


def _entries_sql(expr: str) -> str:
    # OFFSET 0 keeps `cur` a subquery, so each entry's canonical form is computed once (PostgreSQL
    # would otherwise copy the expression into every place that uses it); only changed entries carry
    # their texts out of the join, so the materialised comparison stays small.
    return f"""
WITH cur AS (SELECT e.id, {expr} AS content FROM emission_entries e WHERE e.tenant_id = :t OFFSET 0),
     last AS (SELECT DISTINCT ON (entry_id) entry_id, leaf_index, event, entry
                FROM ledger_leaves WHERE tenant_id = :t AND event IN ({ENTRY_EVENTS_SQL})
               ORDER BY entry_id, leaf_index DESC),
     cmp AS MATERIALIZED (
         SELECT entry_id, leaf_index, event, status,
                CASE WHEN status = 'changed' THEN content END AS content,
                CASE WHEN status = 'changed' THEN logged END AS logged
           FROM (SELECT coalesce(cur.id, last.entry_id) AS entry_id, last.leaf_index, last.event,
                        cur.content, last.entry AS logged,
                        CASE WHEN cur.id IS NULL THEN CASE WHEN last.event = 'delete' THEN 'gone' ELSE 'missing' END
                             WHEN last.entry_id IS NULL THEN 'unlogged'
                             WHEN last.event = 'delete' THEN 'undeleted'
                             WHEN cur.content <> last.entry THEN 'changed'
                             ELSE 'ok' END AS status
                   FROM cur FULL JOIN last ON last.entry_id = cur.id OFFSET 0) AS j)
SELECT status, entry_id, leaf_index, event, content, logged, NULL::bigint AS size, NULL::bigint AS n
  FROM cmp WHERE status NOT IN ('ok', 'gone')
UNION ALL
SELECT 'ok', NULL, NULL, NULL, NULL, NULL, s.size, count(*) FILTER (WHERE cmp.leaf_index < s.size)
  FROM cmp, unnest(CAST(:sizes AS bigint[])) AS s(size) WHERE cmp.status = 'ok' GROUP BY s.size
ORDER BY 1, 2"""


def _describe_change(entry_id: int, leaf_index: int, event: str, current: str, logged: str) -> str:
    now, then = parse_canonical(current.encode()), parse_canonical(logged.encode())
    fields = sorted(set(now) | set(then))
    diffs = [f"{k} is {_show(now.get(k))} but the log records {_show(then.get(k))}"
             for k in fields if now.get(k) != then.get(k)]
    return f"entry {entry_id}: " + "; ".join(diffs) + f" (last logged in leaf {leaf_index}, {event})"


def _show(value: Any) -> str:
    return "absent" if value is None else repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class _Entries:
    count: int  # current entries
    verified_by_size: dict[int, int]  # tree size -> entries unchanged since their last leaf, which is below it
    discrepancies: list[Discrepancy]


def _compare_entries(conn: Connection, tid: int, sizes: Sequence[int]) -> _Entries:
    """Compare every current entry's canonical form with the content its last leaf recorded."""
    _canonical_session(conn)
    all_sizes = sorted({0, *sizes, 2**62})  # 2**62 counts every unchanged entry
    rows = conn.execute(sa.text(_entries_sql(_entry_expression(conn, "e"))), {"t": tid, "sizes": all_sizes}).all()
    found: list[Discrepancy] = []
    by_size: dict[int, int] = {}
    listed: dict[str, int] = {}
    present = 0
    for r in rows:
        if r.status == "ok":
            by_size[int(r.size)] = int(r.n)
            continue
        present += r.status != "missing"
        listed[r.status] = listed.get(r.status, 0) + 1
        if listed[r.status] > _MAX_LISTED:
            continue
        eid = int(r.entry_id)
        if r.status == "changed":
            msg = _describe_change(eid, r.leaf_index, r.event, r.content, r.logged)
        elif r.status == "unlogged":
            msg = f"entry {eid} is missing from the log: no leaf records it"
        elif r.status == "undeleted":
            msg = f"entry {eid} exists but the log's last record of it (leaf {r.leaf_index}) is its deletion"
        else:
            msg = (f"entry {eid} is gone but the log's last record of it (leaf {r.leaf_index}, {r.event}) is not a "
                   "deletion: a leaf without its entry")
        found.append(Discrepancy(Kind(r.status), msg, entry_id=eid, leaf_index=r.leaf_index))
    found += [Discrepancy(Kind(status), f"... and {n - _MAX_LISTED} more entries {status}")
              for status, n in listed.items() if n > _MAX_LISTED]
    return _Entries(by_size.get(2**62, 0) + present, by_size, found)


# --- verification --------------------------------------------------------------------------------


def verify(engine: Engine, slug: str | None = None, *, entries: bool = True) -> LedgerReport:
    """Recompute a tenant's whole log and check it against the current entries and every signed checkpoint.

    With a tenant's engine (read-only is enough: the dashboard's) ``slug`` may be omitted; with the
    admin engine it names the tenant. Reports every entry whose current content differs from what was
    logged, every entry missing from the log, every leaf without its entry, every leaf altered or
    moved since it was appended, and every checkpoint whose signature or root no longer holds.
    Signatures are checked with the public key registered in the database; an auditor pins the key
    exported by ``scope3 ledger public-key`` and uses ``scope3 ledger audit`` instead.

    ``entries=False`` checks the log and its checkpoints only (``entries`` and ``verified`` are then 0).
    Everything is read in one snapshot, on ``_LANES`` + 1 connections working in parallel.
    """
    with engine.connect() as conn, ThreadPoolExecutor(1, thread_name_prefix="ledger-entries") as pool:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot for log and entries
        with conn.begin():
            tid, slug = _tenant(conn, slug)
            sizes = conn.scalars(sa.text("SELECT DISTINCT tree_size FROM ledger_checkpoints WHERE tenant_id = :t"),
                                 {"t": tid}).all()
            with _snapshot_lanes(engine, conn, extra=_LANES - 1 + entries) as lanes:
                # The entries are compared on their own connection while the others recompute the log.
                compared = pool.submit(_compare_entries, lanes.pop(), tid, sizes) if entries else None
                state = _log_state(lanes, tid)
                checkpoints = _checkpoints(conn, tid, state.tree)
                result = compared.result() if compared is not None else _Entries(0, {}, [])
    covered = _verified_size(checkpoints)
    found = list(state.discrepancies)
    found += [Discrepancy(Kind.CHECKPOINT, f"checkpoint {cp.id} ({cp.tree_size} leaves, signed "
                                           f"{cp.signed_at:%Y-%m-%d %H:%M:%SZ}): {cp.problem}")
              for cp in checkpoints if cp.problem]
    found += result.discrepancies
    return LedgerReport(tenant=slug, log_size=state.tree.size, entries=result.count,
                        verified=result.verified_by_size.get(covered, 0), verified_size=covered,
                        last_checkpoint=checkpoints[-1] if checkpoints else None, discrepancies=tuple(found))


# --- keys and checkpoints ------------------------------------------------------------------------


def key_path(data_dir: Path, slug: str) -> Path:
    return tenancy.tenant_dir(data_dir, slug) / KEY_FILE


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise LedgerError(f"{path} is not a readable PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _new_private_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of two first checkpoints racing, one key wins and the other process reads it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_private_key(path)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def _signing_key(conn: Connection, data_dir: Path, slug: str, tid: int, name: str) -> tuple[Ed25519PrivateKey, str]:
    """The tenant's signing key and its key ID, generated and registered on first use."""
    path = key_path(data_dir, slug)
    registered = _keys(conn, tid)
    if path.exists():
        key = _load_private_key(path)
    elif registered:
        raise LedgerError(
            f"tenant {slug}'s ledger signing key {path} is missing; restore it from backup (key "
            f"{', '.join(sorted(registered))} signed the existing checkpoints, which stay verifiable)"
        )
    else:
        key = _new_private_key(path)
    kid = key_id(name, key.public_key()).hex()
    if kid not in registered:
        if registered:
            raise LedgerError(f"{path} is not the key tenant {slug}'s checkpoints are signed with (key "
                              f"{', '.join(sorted(registered))}); restore the original key file")
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        conn.execute(sa.text("INSERT INTO ledger_keys (tenant_id, key_id, key_name, public_key) "
                             "VALUES (:t, :k, :n, :p) ON CONFLICT DO NOTHING"),
                     {"t": tid, "k": kid, "n": name, "p": raw})
    return key, kid


def public_key(engine: Engine, data_dir: Path, slug: str) -> VerifierKey:
    """The tenant's ledger public key and its note name (generating the key pair on first use)."""
    with engine.begin() as conn:
        tid = tenancy.tenant_id(conn, slug)
        name = origin(conn, slug)
        key, _ = _signing_key(conn, data_dir, slug, tid, name)
    return VerifierKey(key.public_key(), name)


@dataclass(frozen=True)
class SignedCheckpoint:
    note: str  # the signed note, as stored and handed to auditors
    checkpoint: Checkpoint


def checkpoint(engine: Engine, data_dir: Path, slug: str) -> SignedCheckpoint:
    """Sign and store a checkpoint of the tenant's log as it is now.

    Refuses (LedgerInconsistent) when the log no longer matches what was appended or an earlier
    checkpoint: signing then would vouch for a rewritten history (C2SP tlog-checkpoint: a log must
    never sign a checkpoint inconsistent with one it signed before).
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            tid = tenancy.tenant_id(conn, slug)
            name = origin(conn, slug)
            with _snapshot_lanes(engine, conn) as lanes:
                state = _log_state(lanes, tid)
            problems = [d.message for d in state.discrepancies]
            problems += [f"checkpoint {c.id}: {c.problem}" for c in _checkpoints(conn, tid, state.tree) if c.problem]
            if problems:
                raise LedgerInconsistent(
                    f"tenant {slug}'s log does not match what was recorded ({problems[0]}; {len(problems)} problems "
                    f"in all): nothing signed; see `scope3 ledger verify {slug}`"
                )
            key, kid = _signing_key(conn, data_dir, slug, tid, name)
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            cp = Checkpoint(name, state.tree.size, state.tree.root(), now)
            note = sign_checkpoint(cp, key)
            conn.execute(sa.text("INSERT INTO ledger_checkpoints (tenant_id, tree_size, root_hash, signed_at, key_id, "
                                 "note) VALUES (:t, :n, :r, :s, :k, :note)"),
                         {"t": tid, "n": cp.tree_size, "r": cp.root_hash, "s": now, "k": kid, "note": note})
    return SignedCheckpoint(note, cp)


def checkpoint_if_grown(engine: Engine, data_dir: Path, slug: str) -> int | None:
    """:func:`checkpoint` when the log has grown since the last signed checkpoint (or none is signed yet);
    returns the signed tree size, or None when there was nothing new to sign."""
    with engine.connect() as conn:
        tid = tenancy.tenant_id(conn, slug)
        size = conn.scalar(sa.text("SELECT count(*) FROM ledger_leaves WHERE tenant_id = :t"), {"t": tid})
        signed = conn.scalar(sa.text("SELECT max(tree_size) FROM ledger_checkpoints WHERE tenant_id = :t"), {"t": tid})
    if signed is not None and int(size or 0) <= int(signed):
        return None
    return checkpoint(engine, data_dir, slug).checkpoint.tree_size


# --- proofs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofBundle:
    """What an auditor takes away to check one entry offline."""

    checkpoint: str  # the signed checkpoint note
    proof: InclusionProof
    entry: bytes  # the leaf's bytes: canonical JSON of the change, exactly as hashed

    def write(self, directory: Path) -> list[Path]:
        """Write ``checkpoint.txt``, ``proof.json`` and ``entry.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        files = [(directory / "checkpoint.txt", self.checkpoint.encode()),
                 (directory / "proof.json", self.proof.to_json().encode()), (directory / "entry.json", self.entry)]
        for path, content in files:
            path.write_bytes(content)
        return [p for p, _ in files]


@dataclass(frozen=True)
class ConsistencyBundle:
    old_checkpoint: str
    new_checkpoint: str
    proof: ConsistencyProof

    def write(self, directory: Path) -> list[Path]:
        """Write ``old-checkpoint.txt``, ``checkpoint.txt`` and ``consistency.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        files = [(directory / "old-checkpoint.txt", self.old_checkpoint),
                 (directory / "checkpoint.txt", self.new_checkpoint),
                 (directory / "consistency.json", self.proof.to_json())]
        for path, content in files:
            path.write_text(content)
        return [p for p, _ in files]


def _checkpoint_row(conn: Connection, tid: int, slug: str, size: int | None = None) -> Any:
    sql = "SELECT id, tree_size, root_hash, note FROM ledger_checkpoints WHERE tenant_id = :t"
    if size is not None:
        sql += " AND tree_size = :n"
    row = conn.execute(sa.text(sql + " ORDER BY id DESC LIMIT 1"), {"t": tid, "n": size}).first()
    if row is None:
        if size is None:
            raise LedgerError(f"tenant {slug}'s log has no checkpoint yet: run `scope3 ledger checkpoint {slug}`")
        raise LedgerError(f"tenant {slug} has no checkpoint of {size} leaves (see `scope3 ledger verify {slug}`)")
    return row


def _tree_matching(engine: Engine, conn: Connection, tid: int, slug: str, cp: Any) -> MerkleTree:
    """The tree of the recorded leaf hashes up to the checkpoint, refused unless it has the signed root."""
    with _snapshot_lanes(engine, conn) as lanes:
        tree, _ = _recompute(lanes, tid, int(cp.tree_size), _STORED_HASHES_SQL)
    if tree.size != cp.tree_size or tree.root() != bytes(cp.root_hash):
        raise LedgerInconsistent(
            f"tenant {slug}'s log no longer matches checkpoint {cp.id} ({cp.tree_size} leaves): no proof is given "
            f"over it; see `scope3 ledger verify {slug}`"
        )
    return tree


def prove(engine: Engine, slug: str, entry_id: int, leaf_index: int | None = None) -> ProofBundle:
    """Inclusion proof of an entry's last change (or of leaf ``leaf_index``) in the latest checkpoint."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            tid = tenancy.tenant_id(conn, slug)
            cp = _checkpoint_row(conn, tid, slug)
            sql = ("SELECT leaf_index, leaf_hash, ledger_leaf_data(tenant_id, leaf_index, entry_id, event, actor, "
                   "reason, recorded_at, entry) AS data FROM ledger_leaves WHERE tenant_id = :t AND entry_id = :e")
            if leaf_index is not None:
                sql += " AND leaf_index = :i"
            else:  # an entry's last change, not a decision on a submission of the same number
                sql += f" AND event IN ({ENTRY_EVENTS_SQL})"
            leaf = conn.execute(sa.text(sql + " ORDER BY leaf_index DESC LIMIT 1"),
                                {"t": tid, "e": entry_id, "i": leaf_index}).first()
            if leaf is None:
                where = f"leaf {leaf_index} of entry {entry_id}" if leaf_index is not None else f"entry {entry_id}"
                raise LedgerError(f"tenant {slug}'s log has no record of {where}")
            if leaf.leaf_index >= cp.tree_size:
                raise LedgerError(
                    f"entry {entry_id}'s last change (leaf {leaf.leaf_index}) is newer than the latest checkpoint "
                    f"({cp.tree_size} leaves): run `scope3 ledger checkpoint {slug}` first"
                )
            if leaf_hash(bytes(leaf.data)) != bytes(leaf.leaf_hash):
                raise LedgerInconsistent(
                    f"leaf {leaf.leaf_index} of tenant {slug}'s log no longer hashes to the hash recorded when it was "
                    f"appended: no proof is given for it; see `scope3 ledger verify {slug}`"
                )
            tree = _tree_matching(engine, conn, tid, slug, cp)
    data = bytes(leaf.data)
    body = Checkpoint.parse_body(cp.note[:cp.note.rfind("\n\n") + 1])
    proof = InclusionProof(origin=body.origin, leaf_index=int(leaf.leaf_index), tree_size=int(cp.tree_size),
                           leaf_hash=leaf_hash(data), audit_path=tuple(tree.inclusion_proof(int(leaf.leaf_index))))
    return ProofBundle(checkpoint=cp.note, proof=proof, entry=data)


def prove_consistency(engine: Engine, slug: str, old_size: int, new_size: int | None = None) -> ConsistencyBundle:
    """Consistency proof from the checkpoint of ``old_size`` leaves to the latest (or ``new_size``) one."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            tid = tenancy.tenant_id(conn, slug)
            old = _checkpoint_row(conn, tid, slug, old_size)
            new = _checkpoint_row(conn, tid, slug, new_size)
            if new.tree_size < old.tree_size:
                raise LedgerError(f"checkpoint sizes go backwards: {old.tree_size} -> {new.tree_size}")
            tree = _tree_matching(engine, conn, tid, slug, new)
    body = Checkpoint.parse_body(new.note[:new.note.rfind("\n\n") + 1])
    proof = ConsistencyProof(origin=body.origin, first=int(old.tree_size), second=int(new.tree_size),
                             consistency=tuple(tree.consistency_proof(int(old.tree_size))))
    return ConsistencyBundle(old_checkpoint=old.note, new_checkpoint=new.note, proof=proof)


def history(engine: Engine, entry_ids: Iterable[int], slug: str | None = None) -> list[dict[str, Any]]:
    """Every recorded change of the given entries, oldest first (leaf, event, actor, reason, time, content)."""
    with engine.connect() as conn:
        tid, _ = _tenant(conn, slug)
        rows = conn.execute(sa.text(
            "SELECT entry_id, leaf_index, event, actor, reason, recorded_at, entry FROM ledger_leaves "
            f"WHERE tenant_id = :t AND entry_id = ANY(CAST(:ids AS bigint[])) AND event IN ({ENTRY_EVENTS_SQL}) "
            "ORDER BY leaf_index"),
            {"t": tid, "ids": [int(i) for i in entry_ids]}).mappings().all()
    return [{**r, "entry": parse_canonical(r["entry"].encode())} for r in rows]
