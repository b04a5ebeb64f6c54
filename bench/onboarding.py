"""Benchmark: an ERP extract of 1,000,000 AP lines over 50,000 vendors, matched, classified and priced.

    .venv/bin/python bench/onboarding.py [--lines 1000000] [--vendors 50000] [--sample 100000]

The extract is text columns, as read from an SAP-style file (decimal commas, dd.mm.yyyy dates, EUR, USD and
GBP in 2022-2023): vendor number for half the vendors, vendor names spelt as AP clerks spell them (case,
legal forms, punctuation), GL accounts, commodity codes and descriptions. 50,000 suppliers (identifiers,
ERP vendor numbers for some) and a rule set of every kind (commodity, GL account, vendor, keyword) stand in
for the tenant. The pipeline is the library's own (scope3lib.suppliers: extracts.read_lines, spend.prepare,
pricing.group_lines and pricing.price, which calls the calculation engine); no database. The same work is
done one line at a time in plain Python (name normalisation, the matching order, the rules in precedence,
exchange rate, price index and factor per line) on a sample, timed and scaled, and the totals compared.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import re
import time
import unicodedata

import numpy as np
import pandas as pd

from scope3lib.accounting import currency
from scope3lib.factors import builtin_factors
from scope3lib.factors.lookup import factor_table
from scope3lib.suppliers import classification, extracts, pricing, spend
from scope3lib.suppliers.classification import Rules
from scope3lib.suppliers.identifiers import LEGAL_FORMS
from scope3lib.suppliers.matching import SupplierIndex

WORDS = ["Northwind", "Bluewater", "Summit", "Granite", "Redwood", "Cobalt", "Harbor", "Pioneer", "Silver", "Atlas",
         "Meridian", "Keystone", "Lakeside", "Ironbridge", "Crescent", "Falcon", "Horizon", "Orchard", "Sterling",
         "Müller", "Schäfer", "Dupont", "Lefèvre", "García", "Nordström"]
TRADES = ["Steel", "Freight", "Packaging", "Software", "Plastics", "Cement", "Textiles", "Consulting", "Logistics",
          "Machining", "Chemicals", "Waste", "Hotels", "Travel", "Staffing"]
FORMS = ["GmbH", "Inc.", "Ltd", "LLC", "S.A.", "AG", "B.V.", "plc", "Corp.", "S.r.l."]


def make_suppliers(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    sectors = builtin_factors("epa-useeio")["factor_key"].to_numpy()
    base = np.array([f"{rng.choice(WORDS)} {rng.choice(TRADES)} {i}" for i in range(n)], dtype=object)
    names = base + " " + rng.choice(FORMS, size=n)
    sup = pd.DataFrame({"id": np.arange(1, n + 1), "name": names, "naics_code": np.where(
        rng.random(n) < 0.7, rng.choice(sectors, size=n), None), "lei": None, "duns": None,
        "vat_number": [f"DE{100000000 + i}" if i % 3 == 0 else None for i in range(n)]})
    with_id = np.flatnonzero(rng.random(n) < 0.4)
    aliases = pd.DataFrame({"supplier_id": with_id + 1, "kind": "vendor_id",
                            "alias_key": (with_id + 100000).astype(str)})
    return sup, aliases


def make_extract(lines: int, vendors: int, sup: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The extract as read: text columns with SAP's headers. Each vendor invoices in its own currency and
    mostly to its usual GL account and description, as in real AP."""
    # Vendors: 90% are suppliers (half of those known by ERP number), 10% unknown; spellings vary.
    known = rng.random(vendors) < 0.9
    sid = rng.permutation(len(sup))[:vendors]
    names = sup["name"].to_numpy(dtype=object)[sid]
    spelt = np.where(rng.random(vendors) < 0.5, np.char.upper(names.astype(str)), names).astype(object)
    spelt = np.where(known, spelt, np.array([f"Unknown Vendor {i} Ltd" for i in range(vendors)], dtype=object))
    vid = np.where(known & (rng.random(vendors) < 0.5), np.char.zfill((sid + 100000).astype(str), 10), "")
    cur = rng.choice(["EUR", "USD", "GBP"], size=vendors, p=[0.6, 0.3, 0.1])
    descr = np.array([f"{t} {w} order {k}" for t in TRADES for w in ("delivery", "invoice", "service", "parts")
                      for k in range(30)], dtype=object)
    gl = np.array([f"00006{n:02d}000" for n in range(60)], dtype=object)
    usual_gl, usual_text = rng.choice(gl, size=vendors), rng.choice(descr, size=vendors)
    # Every vendor appears; a few large ones take a good part of the lines (a long tail, as in real AP).
    pick = np.where(rng.random(lines) < 0.7, rng.integers(0, vendors, size=lines),
                    np.minimum(rng.zipf(1.3, size=lines) - 1, vendors - 1))
    pick[:vendors] = np.arange(vendors)
    usual = rng.random(lines) < 0.8
    days = rng.integers(0, 730, size=lines)
    dates = (pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D")).strftime("%d.%m.%Y")
    amount = np.round(rng.lognormal(6.5, 1.4, size=lines), 2)
    return pd.DataFrame({
        "vendor": vid[pick], "name 1": spelt[pick], "pstng date": dates,
        "amount in lc": [f"{a:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for a in amount],
        "crcy": cur[pick], "g/l acct": np.where(usual, usual_gl[pick], rng.choice(gl, size=lines)),
        "text": np.where(usual, usual_text[pick], rng.choice(descr, size=lines)),
        "material group": np.where(rng.random(lines) < 0.3, rng.choice(["43211500", "24112700", "78101800"],
                                                                          size=lines), ""),
        "cost ctr": "4711",
    })


def make_rules(rng: np.random.Generator) -> pd.DataFrame:
    sectors = builtin_factors("epa-useeio")["factor_key"].to_numpy()
    rows = [("commodity", "4321", 1, "334111"), ("commodity", "2411", 1, "322211"), ("commodity", "7810", 4, "484121")]
    rows += [("gl_account", f"6{n:02d}000", 1, str(rng.choice(sectors))) for n in range(0, 60, 3)]
    rows += [("keyword", t.lower(), 1, str(rng.choice(sectors))) for t in TRADES]
    rows += [("vendor", f"id:{100000 + i}", 1, str(rng.choice(sectors))) for i in range(0, 50_000, 97)]
    return pd.DataFrame(rows, columns=["kind", "pattern", "category", "naics_code"]).assign(id=range(len(rows)))


def vectorised(raw: pd.DataFrame, index: SupplierIndex, rules: Rules, factors: pd.DataFrame) -> tuple[
        pd.DataFrame, dict[str, float]]:
    times = {}
    t0 = time.perf_counter()
    mapping = extracts.resolve_mapping(raw, "bench", None, name="sap")
    lines, problems = extracts.read_lines(raw, mapping)
    assert not problems, problems[:3]
    times["read and check the lines (amounts, dates, vendor keys, line hashes)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    prepared = spend.prepare(lines, index, rules)
    times["match vendors and classify lines"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    groups, _ = pricing.group_lines(prepared)
    priced = pricing.price(groups, factors)
    times[f"group ({len(groups):,} groups) and price"] = time.perf_counter() - t0
    return priced, times


_NON_WORD = re.compile(r"[^\w]+")


def per_row_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.replace("ß", "ss"))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = _NON_WORD.sub(" ", folded.replace(".", "").replace("'", "").replace("&", " and ")).lower().split()
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


def per_row(raw: pd.DataFrame, index: SupplierIndex, rules: Rules, factors: pd.DataFrame) -> float:
    """The same work one line at a time: hash and parse the line, match its vendor, classify it in precedence,
    add it to its group (month, vendor, category, sector, currency) and price it; returns kg CO2e."""
    eeio = {k: v for s, k, v in zip(factors["source"], factors["factor_key"], factors["kg_co2e_per_unit"],
                                    strict=True) if s == "epa-useeio"}
    fx = {(r.currency, r.year): r.usd_per_unit for r in currency.EXCHANGE_RATES}
    cpi = currency.PRICE_INDEX_USD
    naics_of = {s: n for s, n in zip(index.names["supplier_id"], index.names["naics_code"], strict=True)
                if isinstance(n, str)}
    k = rules.by_kind
    keywords = [(re.compile(rf"\b{re.escape(p)}\b"), v[:2]) for p, v in
                sorted(k["keyword"].items(), key=lambda kv: (-len(kv[0]), kv[1][2]))]
    total = 0.0
    groups: dict[str, list[float]] = {}
    hashes = []
    for r in raw.itertuples(index=False, name=None):
        hashes.append(hashlib.sha256("\x1f".join(r).encode()).hexdigest())
        vendor_id, name, date, amount_text, cur, gl, text, commodity = (v.strip() for v in r[:8])
        amount = float(amount_text.replace(".", "").replace(",", "."))
        _day, month, year = date.split(".")
        if not (vendor_id or name) or not cur or not 1 <= int(month) <= 12:
            raise ValueError(f"bad line {r}")
        vid = vendor_id.strip().lstrip("0")
        key = f"id:{vid}" if vid else f"name:{per_row_key(name)}"
        supplier = index.by_vendor_id.get(vid) if vid else None
        if supplier is None:
            supplier = index.by_name.get(per_row_key(name))
        hit: tuple[int, str] | None = None
        for length in range(len(commodity), 0, -1):
            if commodity[:length] in k["commodity"]:
                hit = k["commodity"][commodity[:length]][:2]
                break
        if hit is None and gl.lstrip("0") in k["gl_account"]:
            hit = k["gl_account"][gl.lstrip("0")][:2]
        if hit is None and key in k["vendor"]:
            hit = k["vendor"][key][:2]
        if hit is None and supplier is not None and naics_of.get(supplier):
            hit = (classification.default_category(naics_of[supplier]), naics_of[supplier])
        if hit is None:
            low = " ".join(text.lower().split())
            hit = next((h for p, h in keywords if p.search(low)), None)
        if hit is None:
            continue
        y = int(year)
        rate = 1.0 if cur == "USD" else fx[(cur, y)]
        group = groups.setdefault(f"{year}-{month}|{key}|{hit[0]}|{hit[1]}|{cur}", [0.0, 0.0])
        group[0] += amount
        kg = amount * rate * cpi[2022] / cpi[y] * eeio[hit[1]]
        group[1] += kg
        total += kg
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--vendors", type=int, default=50_000)
    ap.add_argument("--sample", type=int, default=100_000, help="lines done one at a time in Python")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    sup, aliases = make_suppliers(args.vendors, rng)
    index = SupplierIndex.build(sup, aliases)
    rules = Rules.build(make_rules(rng))
    factors = factor_table(None)
    raw = make_extract(args.lines, args.vendors, sup, rng)
    print(f"{args.lines:,} AP lines over {args.vendors:,} vendors; {len(sup):,} suppliers")
    vectorised(raw.head(2000), index, rules, factors)  # warm imports and caches outside the timing
    # The extract and the tenant's tables are long-lived: the cyclic collector need not walk their millions of
    # strings at every collection (both paths below get the same).
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    priced, times = vectorised(raw, index, rules, factors)
    total = time.perf_counter() - t0
    for what, s in times.items():
        print(f"  {what}: {s:.2f} s")
    print(f"vectorised, whole pipeline: {total:.2f} s ({args.lines / total:,.0f} lines/s); "
          f"{(priced['error'] != '').sum()} groups refused, {priced['kg_co2e'].sum() / 1000:,.0f} t CO2e")
    sample = raw.head(args.sample)
    t0 = time.perf_counter()
    kg_rows = per_row(sample, index, rules, factors)
    loop = (time.perf_counter() - t0) * args.lines / len(sample)
    small, _ = vectorised(sample, index, rules, factors)
    kg_vec = float(small["kg_co2e"].sum())
    print(f"per-row Python on {len(sample):,} lines, scaled to {args.lines:,}: {loop:.1f} s; vectorised is "
          f"{loop / total:.1f}x faster; totals on the sample: {kg_vec:,.1f} vs {kg_rows:,.1f} kg "
          f"({'equal' if math.isclose(kg_vec, kg_rows, rel_tol=1e-6) else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
