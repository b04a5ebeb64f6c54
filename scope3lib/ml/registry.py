"""The tenant's trained models: files under ``DATA_DIR/tenants/<slug>/models/`` with a JSON index.

Each model is one skops file (``<version>.skops``; skops, not pickle, so loading a file never runs code
from it) and one entry in ``index.json``: version, kind, created_at, the training data fingerprint
(sha256 of the training rows), parameters, metrics, the conformal quantile and sector peer counts, and
the file's sha256. Versions are ``v1``, ``v2``, ... in training order; :func:`load` takes a version or
the latest. Models are generated files: never committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio

from ..errors import ModelNotFound, Scope3Error
from ..tenancy import tenant_dir
from .estimator import Estimator, eeio_factors

KIND = "supplier-intensity"
# Only these modules may appear in a model file; anything else is refused before it is loaded.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def registry_dir(data_dir: Path, slug: str) -> Path:
    return tenant_dir(data_dir, slug) / "models"


def _index_path(data_dir: Path, slug: str) -> Path:
    return registry_dir(data_dir, slug) / "index.json"


def _read_index(data_dir: Path, slug: str) -> list[dict[str, Any]]:
    path = _index_path(data_dir, slug)
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    return entries


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(data_dir: Path, slug: str, estimator: Estimator) -> str:
    """Persist a trained estimator as the next version; sets and returns ``estimator.version``."""
    folder = registry_dir(data_dir, slug)
    folder.mkdir(parents=True, exist_ok=True)
    index = _read_index(data_dir, slug)
    version = f"v{len(index) + 1}"
    path = folder / f"{version}.skops"
    sio.dump({"pipeline": estimator.pipeline}, path)
    entry = {
        "version": version, "kind": KIND, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "fingerprint": estimator.fingerprint, "params": estimator.params, "metrics": estimator.metrics,
        "q": estimator.q, "alpha": estimator.alpha, "peers": estimator.peers, "file": path.name,
        "sha256": _sha256(path),
    }
    tmp = _index_path(data_dir, slug).with_suffix(".tmp")
    tmp.write_text(json.dumps([*index, entry], indent=2))
    os.replace(tmp, _index_path(data_dir, slug))  # atomic: a reader never sees half an index
    estimator.version = version
    return version


def versions(data_dir: Path, slug: str) -> pd.DataFrame:
    """One row per stored model: version, created_at, fingerprint, suppliers, mape_pct, eeio_mape_pct,
    r2_log, eeio_r2_log, coverage."""
    rows = [{"version": e["version"], "created_at": e["created_at"], "fingerprint": e["fingerprint"][:12],
             **{k: e["metrics"].get(k) for k in ("suppliers", "mape_pct", "eeio_mape_pct", "r2_log", "eeio_r2_log",
                                                   "coverage", "beats_baseline")}}
            for e in _read_index(data_dir, slug)]
    return pd.DataFrame(rows)


def load(data_dir: Path, slug: str, version: str | None = None, eeio: pd.Series | None = None) -> Estimator:
    """The stored estimator ``version`` (the latest when None). Refuses a file whose checksum changed or
    that holds types outside scikit-learn and numpy."""
    index = _read_index(data_dir, slug)
    if not index:
        raise ModelNotFound(f"tenant {slug!r} has no trained model in {registry_dir(data_dir, slug)}; "
                            f"run `scope3 ml train {slug}` first")
    entry = index[-1] if version is None else next((e for e in index if e["version"] == version), None)
    if entry is None:
        known = ", ".join(e["version"] for e in index)
        raise ModelNotFound(f"tenant {slug!r} has no model {version!r} (stored: {known})")
    path = registry_dir(data_dir, slug) / entry["file"]
    if not path.exists() or _sha256(path) != entry["sha256"]:
        raise Scope3Error(f"model file {path} is missing or changed since it was stored; train again "
                          f"(`scope3 ml train {slug}`)")
    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise Scope3Error(f"model file {path} holds types outside scikit-learn/numpy ({', '.join(foreign)}); "
                          "refused to load it")
    content = sio.load(path, trusted=untrusted)
    return Estimator(pipeline=content["pipeline"], q=float(entry["q"]), peers={k: int(v) for k, v in
                     entry["peers"].items()}, params=entry["params"], metrics=entry["metrics"],
                     fingerprint=entry["fingerprint"], alpha=float(entry["alpha"]), version=entry["version"],
                     eeio=eeio_factors() if eeio is None else eeio)
