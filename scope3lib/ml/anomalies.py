"""Meter anomalies per device: gaps, stuck values, spikes and drift against the device's own pattern.

Each reading is compared with the device's own *profile*: the median kWh of the same hour of the week
(hour of the day when the device has less than two weeks of data). The log ratio ``log(kWh / profile)``
is then scored robustly (median and MAD per device), so a device with a noisy load is not held to a
quiet device's standard.

* **gap**: time between consecutive readings above :data:`GAP_FACTOR` times the device's usual interval;
* **stuck**: :data:`STUCK_MIN` or more consecutive identical non-zero readings (a live load never repeats
  to the last digit; runs of zero are left alone, a shut plant reads zero);
* **spike**: a reading whose robust z-score of the log ratio is at least :data:`SPIKE_Z`;
* **drift**: days whose median log ratio departs from the device's usual level by more than
  :data:`DRIFT_TOL` (about 12 %), merged into one finding per run of days.

The profile and the usual level are taken from the first half of the device's history (its reference
window; the whole history when shorter than two weeks), so a lasting drift does not become the norm.

Findings are a DataFrame (device_key, kind, start, end, readings, detail) the dashboard and the daily
rollup can show; :func:`flag_readings` marks the readings themselves. Nothing is dropped.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db

GAP_FACTOR = 2.5
STUCK_MIN = 4
SPIKE_Z = 6.0
DRIFT_TOL = 0.12  # log ratio, ~12 %
_MAD_TO_SD = 0.6745
FINDING_COLUMNS = ["device_key", "kind", "start", "end", "readings", "detail"]


def _prepare(readings: pd.DataFrame) -> pd.DataFrame:
    df = readings[["device_key", "ts", "kwh"]].copy()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df = df.sort_values(["device_key", "ts"]).reset_index(drop=True)
    g = df.groupby("device_key", sort=False)
    span_days = (g["ts"].transform("max") - g["ts"].transform("min")).dt.total_seconds() / 86400
    weekly = span_days >= 14
    hour = df["ts"].dt.hour
    df["slot"] = np.where(weekly, df["ts"].dt.day_of_week * 24 + hour, 1000 + hour)
    # The profile and the usual level come from the device's first half (its reference window), so a
    # drift in the recent data is measured against what the meter read before, not against itself.
    first = g["ts"].transform("min")
    df["reference"] = ~weekly | (df["ts"] <= first + pd.to_timedelta(span_days / 2, unit="D"))
    ref_profile = (df[df["reference"]].groupby(["device_key", "slot"])["kwh"].median().rename("ref_profile"))
    df = df.join(ref_profile, on=["device_key", "slot"])
    profile = df["ref_profile"].fillna(df.groupby(["device_key", "slot"])["kwh"].transform("median"))
    df["profile"] = profile
    positive = (df["kwh"] > 0) & (profile > 0)
    df["log_ratio"] = np.log(df["kwh"].where(positive) / profile.where(positive))
    lr = df.groupby("device_key", sort=False)["log_ratio"]
    centre = lr.transform("median")
    mad = (df["log_ratio"] - centre).abs().groupby(df["device_key"], sort=False).transform("median")
    df["z"] = _MAD_TO_SD * (df["log_ratio"] - centre) / mad.clip(lower=1e-3)
    df["day"] = df["ts"].dt.floor("D")
    return df


def _gaps(df: pd.DataFrame) -> pd.DataFrame:
    prev = df.groupby("device_key", sort=False)["ts"].shift()
    step = (df["ts"] - prev).dt.total_seconds()
    usual = step.groupby(df["device_key"], sort=False).transform("median")
    hit = step > GAP_FACTOR * usual
    out = pd.DataFrame({"device_key": df.loc[hit, "device_key"], "kind": "gap", "start": prev[hit],
                        "end": df.loc[hit, "ts"], "readings": 0})
    missing = (step[hit] / usual[hit]).round().astype(int) - 1
    out["detail"] = [f"no readings for {s / 3600:.1f} h (~{m} missing)" for s, m in zip(step[hit], missing,
                                                                                       strict=True)]
    return out


def _runs(df: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """Consecutive runs of ``mask`` per device: device_key, start, end, readings, value (first kWh) and
    extreme (the kWh furthest from zero)."""
    new_run = mask & ~(mask.groupby(df["device_key"], sort=False).shift(fill_value=False))
    run_id = new_run.cumsum().where(mask)
    g = df[mask].groupby(run_id[mask])
    lo, hi = g["kwh"].min(), g["kwh"].max()
    return pd.DataFrame({"device_key": g["device_key"].first(), "start": g["ts"].first(), "end": g["ts"].last(),
                         "readings": g.size(), "value": g["kwh"].first(),
                         "extreme": hi.where(hi.abs() >= lo.abs(), lo)})


def _stuck(df: pd.DataFrame) -> pd.DataFrame:
    same_as_prev = df["kwh"].eq(df.groupby("device_key", sort=False)["kwh"].shift())
    # A run of n identical readings is the first one plus n-1 "same as previous".
    same_as_next = same_as_prev.groupby(df["device_key"], sort=False).shift(-1, fill_value=False)
    mask = (same_as_prev | same_as_next.astype(bool)) & (df["kwh"] != 0)
    runs = _runs(df, mask)
    runs = runs[runs["readings"] >= STUCK_MIN]
    return runs.assign(kind="stuck", detail=[f"{n} identical readings of {v:g} kWh" for n, v in
                                             zip(runs["readings"], runs["value"], strict=True)])


def _spikes(df: pd.DataFrame) -> pd.DataFrame:
    hit = df["z"].abs() >= SPIKE_Z
    s = df[hit]
    return pd.DataFrame({
        "device_key": s["device_key"], "kind": "spike", "start": s["ts"], "end": s["ts"], "readings": 1,
        "detail": [f"{k:g} kWh is {np.exp(r):.1f}× its usual {p:g} kWh at this hour (robust z {z:.0f})"
                   for k, r, p, z in zip(s["kwh"], s["log_ratio"], s["profile"], s["z"], strict=True)],
    })


def _drift(df: pd.DataFrame) -> pd.DataFrame:
    daily = (df.groupby(["device_key", "day"]).agg(level=("log_ratio", "median"), reference=("reference", "all"))
             .reset_index())
    usual = daily["level"].where(daily["reference"]).groupby(daily["device_key"]).transform("median")
    daily["level"] -= usual
    daily = daily.drop(columns=["reference"])
    mask = daily["level"].abs() > DRIFT_TOL
    daily = daily.rename(columns={"day": "ts", "level": "kwh"})
    runs = _runs(daily, mask)
    runs["end"] = runs["end"] + pd.Timedelta(days=1)
    return runs.assign(kind="drift", readings=0, detail=[
        f"{n} day(s) running {100 * (np.exp(w) - 1):+.0f}% against its own daily and weekly pattern"
        for n, w in zip(runs["readings"], runs["extreme"], strict=True)])


def findings(readings: pd.DataFrame) -> pd.DataFrame:
    """All anomalies of every device (pure; no database). Input columns: device_key, ts, kwh.

    Columns: device_key, kind (gap, stuck, spike, drift), start, end (UTC), readings (count involved), detail.
    """
    if readings.empty:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    df = _prepare(readings)
    parts = [p[FINDING_COLUMNS] for p in (_gaps(df), _stuck(df), _spikes(df), _drift(df)) if not p.empty]
    if not parts:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values(["device_key", "start"]).reset_index(drop=True)


def flag_readings(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings with ``anomaly``: the kind of finding covering each (stuck, spike or drift), else None."""
    df = _prepare(readings)
    out = df[["device_key", "ts", "kwh", "profile", "z"]].copy()
    f = findings(readings)
    f = f[f["kind"] != "gap"].assign(
        # A drift finding ends at the next midnight, exclusive; the others at their last reading, inclusive.
        last=lambda x: x["end"].where(x["kind"] != "drift", x["end"] - pd.Timedelta(microseconds=1)),
        priority=lambda x: x["kind"].map({"spike": 0, "stuck": 1, "drift": 2}))
    m = out.reset_index().merge(f[["device_key", "kind", "start", "last", "priority"]], on="device_key")
    m = m[(m["ts"] >= m["start"]) & (m["ts"] <= m["last"])]
    # A spike inside a drift is reported as the spike.
    best = m.sort_values("priority").drop_duplicates("index").set_index("index")["kind"]
    out["anomaly"] = best.reindex(out.index).astype(object).where(lambda s: s.notna(), None)
    return out


def device_readings(engine: Engine | Connection, since: dt.datetime | None = None) -> pd.DataFrame:
    """The tenant's readings with their device key (row-level security keeps them to the tenant)."""
    sql = ("SELECT d.device_key, r.ts, r.kwh FROM readings r JOIN devices d ON d.id = r.device_id"
           + (" WHERE r.ts >= :since" if since else "") + " ORDER BY d.device_key, r.ts")
    return db.read_frame(engine, sql, {"since": since} if since else None)


def synthetic_readings(devices: int, days: int, *, interval_s: int = 900, seed: int = 0,
                       faults: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded meter readings with a daily and weekly load shape, and the faults planted in them.

    Device i gets fault kind ``i % 4`` (gap, stuck, spike, drift) at a random time in the second half.
    Returns (readings: device_key, ts, kwh; planted: device_key, kind, start, end).
    """
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2025-03-03", periods=days * 86400 // interval_s, freq=f"{interval_s}s", tz="UTC")
    hours = ts.hour.to_numpy() + ts.minute.to_numpy() / 60
    shape = 0.4 + 0.6 * np.exp(-((hours - 13) / 4) ** 2)
    shape = shape * np.where(ts.day_of_week.to_numpy() >= 5, 0.55, 1.0)
    frames, planted = [], []
    for i in range(devices):
        key = f"meter-{i + 1:03d}"
        base = rng.uniform(2, 20) * interval_s / 900
        kwh = (base * shape * rng.lognormal(0, 0.06, size=len(ts))).round(4)
        keep = np.ones(len(ts), dtype=bool)
        if faults:
            at = int(rng.integers(len(ts) // 2, len(ts) - 4 * 86400 // interval_s))
            kind = ("gap", "stuck", "spike", "drift")[i % 4]
            if kind == "gap":
                n = int(3 * 3600 // interval_s)
                keep[at:at + n] = False
                planted.append((key, kind, ts[at - 1], ts[at + n]))
            elif kind == "stuck":
                n = 8
                kwh[at:at + n] = kwh[at]
                planted.append((key, kind, ts[at], ts[at + n - 1]))
            elif kind == "spike":
                kwh[at] = kwh[at] * rng.uniform(4, 8)
                planted.append((key, kind, ts[at], ts[at]))
            else:  # drift: a calibration creeping up to +40 % over three days, then staying
                n = 3 * 86400 // interval_s
                ramp = np.minimum(np.arange(len(ts) - at) / n, 1.0)
                kwh[at:] = kwh[at:] * (1 + 0.4 * ramp)
                planted.append((key, kind, ts[at], ts[-1]))
        frames.append(pd.DataFrame({"device_key": key, "ts": ts[keep], "kwh": kwh[keep]}))
    return (pd.concat(frames, ignore_index=True),
            pd.DataFrame(planted, columns=["device_key", "kind", "start", "end"]))


def recall(found: pd.DataFrame, planted: pd.DataFrame) -> float:
    """Share of planted faults matched by a finding of the same kind and device that overlaps it in time."""
    if planted.empty:
        return float("nan")
    m = planted.reset_index().merge(found, on=["device_key", "kind"], suffixes=("", "_f"))
    hit = (m["start_f"] <= m["end"]) & (m["end_f"] >= m["start"])
    return float(m.loc[hit, "index"].nunique() / len(planted))
