"""Spend lines put into a GHG Protocol category and a NAICS sector by the tenant's rules, with a stated precedence.

Precedence, the first that applies decides:

1. ``commodity``: the line's commodity code (UNSPSC, a material group) starts with the rule's code; the
   longest such code wins (``43211500`` before ``4321``);
2. ``gl_account``: the line's GL account is the rule's (leading zeros ignored, as SAP pads them);
3. ``vendor``: a default for the vendor (its key in the extract, :func:`~.extracts.vendor_keys`);
4. ``supplier``: the NAICS code on the matched supplier's record, in the category its sector usually
   falls in (:func:`default_category`);
5. ``keyword``: a word or phrase of the line's description; the longest keyword found wins.

What no rule covers stays unclassified, listed with ranked sector suggestions
(:class:`SectorSuggester`) for an analyst to confirm; a confirmation is a new rule. Rules are applied per
distinct value (commodity code, account, vendor, description), then mapped back to the lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..categories import CATEGORIES, Method
from ..errors import ClassificationError

KINDS = ("commodity", "gl_account", "vendor", "keyword")
#: The order rules apply in, ``supplier`` being the matched supplier's own NAICS code.
PRECEDENCE = ("commodity", "gl_account", "vendor", "supplier", "keyword")

#: The category a sector's purchases usually fall in, by NAICS prefix (longest prefix wins; else category 1,
#: purchased goods and services). Transport and warehousing bought in: 4; travel: 6; waste: 5; leasing: 8;
#: construction and machinery (capital goods): 2.
SECTOR_CATEGORY = {"481": 6, "482": 4, "483": 4, "484": 4, "485": 6, "486": 4, "488": 4, "492": 4, "493": 4,
                   "721": 6, "562": 5, "531": 8, "532": 8, "236": 2, "237": 2, "333": 2, "334111": 2}


def default_category(naics: str) -> int:
    for length in range(len(naics), 2, -1):
        if naics[:length] in SECTOR_CATEGORY:
            return SECTOR_CATEGORY[naics[:length]]
    return 1


def normalise_pattern(kind: str, pattern: str) -> str:
    """A rule's pattern as lines are compared with it."""
    p = pattern.strip()
    if kind == "gl_account":
        return p.lstrip("0") or "0"
    if kind == "keyword":
        return " ".join(p.lower().split())
    if kind == "commodity":
        return p.replace(" ", "").replace(".", "")
    return p


def check_rule(kind: str, pattern: str, category: int, naics: str, sectors: set[str]) -> None:
    """Refuse a rule that could not price its lines: unknown kind, empty pattern, a category without a
    spend-based method, a NAICS code without a factor."""
    if kind not in KINDS:
        raise ClassificationError(f"unknown rule kind {kind!r}: use one of {', '.join(KINDS)}")
    if not pattern.strip():
        raise ClassificationError("a rule needs a pattern (the code, account, vendor or keyword it matches)")
    if category not in CATEGORIES:
        raise ClassificationError(f"category {category} is not a GHG Protocol Scope 3 category (1-15)")
    if Method.SPEND_BASED not in CATEGORIES[category].methods:
        allowed = [n for n, c in CATEGORIES.items() if Method.SPEND_BASED in c.methods]
        raise ClassificationError(f"category {category} ({CATEGORIES[category].name}) has no spend-based method; "
                                  f"spend lines go into one of {', '.join(map(str, allowed))}")
    if naics not in sectors:
        raise ClassificationError(f"NAICS code {naics!r} has no spend-based factor in the stored sector dataset "
                                  "(`scope3 factors list epa-useeio`)")


@dataclass(frozen=True)
class Rules:
    """A tenant's rules by kind: pattern -> (category, naics_code, rule id)."""

    by_kind: dict[str, dict[str, tuple[int, str, int]]]

    @classmethod
    def read(cls, bind: Engine | Connection) -> Rules:
        return cls.build(db.read_frame(bind, "SELECT id, kind, pattern, category, naics_code FROM "
                                             "classification_rules ORDER BY id"))

    @classmethod
    def build(cls, frame: pd.DataFrame) -> Rules:
        by_kind: dict[str, dict[str, tuple[int, str, int]]] = {k: {} for k in KINDS}
        for kind, pattern, category, naics, rid in zip(frame["kind"].astype(str), frame["pattern"].astype(str),
                                                       frame["category"].astype(int), frame["naics_code"].astype(str),
                                                       frame["id"].astype(int), strict=True):
            by_kind[kind].setdefault(normalise_pattern(kind, pattern), (int(category), naics, int(rid)))
        return cls(by_kind)


def _per_distinct(values: pd.Series, decide: Any) -> tuple[np.ndarray, np.ndarray]:
    """``decide(value) -> (category, naics) | None`` once per distinct value; (category 0 where none, naics)."""
    codes, uniques = pd.factorize(values.astype(str))
    cat = np.zeros(len(uniques) + 1, dtype=np.int16)
    naics = np.full(len(uniques) + 1, "", dtype=object)
    for j, u in enumerate(uniques):
        hit = decide(u) if u else None
        if hit is not None:
            cat[j], naics[j] = hit[0], hit[1]
    pos = np.where(codes < 0, len(uniques), codes)
    return cat[pos], naics[pos]


def _commodity(rules: dict[str, tuple[int, str, int]]) -> Any:
    def decide(code: str) -> tuple[int, str] | None:
        c = normalise_pattern("commodity", code)
        for length in range(len(c), 0, -1):
            if c[:length] in rules:
                return rules[c[:length]][:2]
        return None
    return decide


def _keywords(rules: dict[str, tuple[int, str, int]]) -> Any:
    ordered = sorted(rules.items(), key=lambda kv: (-len(kv[0]), kv[1][2]))
    compiled = [(re.compile(rf"\b{re.escape(k)}\b"), v[:2]) for k, v in ordered]

    def decide(text: str) -> tuple[int, str] | None:
        low = " ".join(text.lower().split())
        for pattern, hit in compiled:
            if pattern.search(low):
                return hit
        return None
    return decide


def classify(lines: pd.DataFrame, rules: Rules, supplier_naics: np.ndarray) -> pd.DataFrame:
    """category (0 where unclassified), naics_code and classified_by (the kind of rule, ``supplier`` or ``""``) of
    each line. ``lines`` has commodity_code, gl_account, vendor_key and description; ``supplier_naics`` is the
    matched supplier's NAICS code per line (``""`` where none)."""
    n = len(lines)
    category = np.zeros(n, dtype=np.int16)
    naics = np.full(n, "", dtype=object)
    by = np.full(n, "", dtype=object)

    def apply(kind: str, cat: np.ndarray, code: np.ndarray) -> None:
        new = (category == 0) & (cat > 0)
        category[new], naics[new], by[new] = cat[new], code[new], kind

    k = rules.by_kind
    if k["commodity"]:
        apply("commodity", *_per_distinct(lines["commodity_code"], _commodity(k["commodity"])))
    if k["gl_account"]:
        gl = k["gl_account"]
        apply("gl_account", *_per_distinct(lines["gl_account"],
                                           lambda a: gl.get(normalise_pattern("gl_account", a), (0, ""))[:2]))
    if k["vendor"]:
        vendor = k["vendor"]
        apply("vendor", *_per_distinct(lines["vendor_key"], lambda v: vendor.get(v, (0, ""))[:2]))
    sup = pd.Series(supplier_naics, dtype=object).fillna("").astype(str)
    apply("supplier", *_per_distinct(sup, lambda c: (default_category(c), c)))
    if k["keyword"]:
        apply("keyword", *_per_distinct(lines["description"], _keywords(k["keyword"])))
    return pd.DataFrame({"category": category, "naics_code": naics, "classified_by": by})


class SectorSuggester:
    """Ranks NAICS sectors for a line's text: TF-IDF (words and character n-grams) over each sector's title
    (the factor descriptions of the sector dataset) and the texts of the tenant's rules for it, cosine
    similarity. Suggestions only; an analyst confirms."""

    def __init__(self, sectors: pd.DataFrame, rules: pd.DataFrame | None = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        docs = sectors.assign(text=sectors["description"].astype(str)).set_index("naics_code")["text"]
        if rules is not None and len(rules):
            extra = rules.groupby("naics_code")["pattern"].agg(" ".join)
            docs = (docs.astype(str) + " " + extra.reindex(docs.index).fillna("").astype(str)).str.strip()
            docs = docs[docs.index.isin(sectors["naics_code"])]
        self.codes = np.asarray(docs.index, dtype=object)
        self.titles = sectors.set_index("naics_code")["description"].reindex(self.codes).to_numpy(dtype=object)
        self.vectorizer = FeatureUnion([
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
        ])
        self.matrix = self.vectorizer.fit_transform(docs.str.lower().tolist())

    @classmethod
    def read(cls, bind: Engine | Connection) -> SectorSuggester:
        from ..factors import sources

        names = sources.sector_sources()
        sectors = db.read_frame(bind, "SELECT DISTINCT ON (f.factor_key) f.factor_key AS naics_code, f.description "
                                      "FROM factors f JOIN factor_datasets d ON d.id = f.dataset_id "
                                      "WHERE d.source = ANY(:s) ORDER BY f.factor_key, d.imported_at DESC",
                                {"s": names})
        rules = db.read_frame(bind, "SELECT naics_code, pattern FROM classification_rules WHERE kind = 'keyword'")
        return cls(sectors, rules)

    def suggest(self, texts: list[str], top: int = 3) -> list[list[tuple[str, str, float]]]:
        """For each text, the ``top`` sectors (naics_code, title, score 0-1), best first."""
        if not texts:
            return []
        sims = (self.vectorizer.transform([t.lower() for t in texts]) @ self.matrix.T).toarray() / 2
        out = []
        for row in sims:
            best = np.argsort(-row)[:top]
            out.append([(str(self.codes[j]), str(self.titles[j]), round(float(row[j]), 3)) for j in best
                        if row[j] > 0])
        return out
