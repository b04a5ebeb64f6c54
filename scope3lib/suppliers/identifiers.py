"""Normalised forms of what identifies a company: its name, LEI, DUNS number, VAT number and ERP vendor number.

Two records of one company rarely spell it the same way ("ACME GmbH", "Acme G.m.b.H.", "acme"), so names
are compared by a *key*: lower case, accents folded, punctuation dropped, legal forms (GmbH, Inc, Ltd, SA,
...) removed, spaces squeezed. Identifiers are checked by their own rules (LEI: ISO 17442 check digits,
MOD 97-10; DUNS: nine digits; VAT: an EU or GB country prefix and 2-13 letters or digits) and returned in
one canonical spelling, or refused with the reason.

Names are keyed by the tens of thousands in an import and by the million in an ERP extract (once per
distinct vendor), so :func:`name_key` takes an ASCII fast path (``str.translate`` and a set lookup) and
only non-ASCII names go through Unicode decomposition.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import pandas as pd


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Legal forms left out of a name's key (the company is the same whatever its form is written as).
LEGAL_FORMS = _words("""
ab ag as asa bv bvba co company corp corporation cv gmbh gmbhco inc incorporated kft kg kgaa limited llc llp
lp ltd mbh nv oy oyj plc pte pty sa sab sarl sas sasu sc scs se sl sp spa srl sro zoo kk ulc ohg eg ev
""")

# Punctuation becomes a space, except the dots and apostrophes inside abbreviations ("G.m.b.H.", "O'Neil").
_ASCII_TABLE = str.maketrans({**{c: " " for c in "!\"#$%()*+,-/:;<=>?@[\\]^_`{|}~\t\n\r"}, ".": "", "'": "",
                              "&": " and "})
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def name_key(name: object) -> str:
    """The key two spellings of one company's name share (``""`` for an empty name)."""
    if not isinstance(name, str):
        return ""
    if not name.isascii():
        folded = unicodedata.normalize("NFKD", name.replace("ß", "ss"))
        name = "".join(c for c in folded if not unicodedata.combining(c))
        name = _NON_WORD.sub(" ", name.replace(".", "").replace("'", "").replace("&", " and "))
    words = name.lower().translate(_ASCII_TABLE).split()
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


def vendor_number(value: object) -> str | None:
    """The key an ERP vendor number is matched by, the same in extracts, aliases and matching: without the
    spaces around it and its leading zeros (``" 000123"`` -> ``"123"``; all zeros -> ``"0"``, itself a number);
    None for no number (None, NaN, or blank)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return (text.lstrip("0") or "0") if text else None


def name_keys(names: Iterable[object]) -> np.ndarray:
    """:func:`name_key` of each name, computed once per distinct name."""
    codes, uniques = pd.factorize(pd.Series(list(names) if not isinstance(names, pd.Series) else names,
                                            dtype=object))
    keys = np.array([name_key(u) for u in uniques], dtype=object)
    out = keys[np.clip(codes, 0, None)] if len(keys) else np.full(len(codes), "", dtype=object)
    out[codes < 0] = ""
    return out


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def lei(value: str) -> str:
    """An ISO 17442 LEI in upper case; raises ValueError with the reason when it is not one."""
    v = value.strip().replace(" ", "").upper()
    if not re.fullmatch(r"[0-9A-Z]{18}[0-9]{2}", v):
        raise ValueError(f"LEI {value!r} is not 20 characters (18 letters or digits and 2 check digits)")
    if _mod97(v) != 1:
        raise ValueError(f"LEI {value!r} fails its ISO 17442 check digits (a typing error?)")
    return v


def duns(value: str) -> str:
    """A DUNS number as nine digits (dashes and spaces dropped); raises ValueError when it is not one."""
    v = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"[0-9]{9}", v):
        raise ValueError(f"DUNS number {value!r} is not nine digits")
    return v


#: Country prefixes of VAT numbers (EU member states' VIES codes, with EL for Greece, and GB, CH, NO).
VAT_PREFIXES = _words("""
AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI GB CH NO
""")


def vat_number(value: str) -> str:
    """A VAT number with its country prefix, upper case, without spaces, dots or dashes; raises ValueError."""
    v = re.sub(r"[\s.\-]", "", value).upper()
    if v[:2] == "GR":
        v = "EL" + v[2:]  # VIES writes Greece EL
    if v[:2] not in VAT_PREFIXES:
        raise ValueError(f"VAT number {value!r} does not start with a country prefix such as DE, FR or GB")
    if not re.fullmatch(r"[A-Z0-9]{2,13}", v[2:]):
        raise ValueError(f"VAT number {value!r}: after the country prefix come 2 to 13 letters or digits")
    return v


def email(value: str) -> str:
    v = value.strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", v):
        raise ValueError(f"contact email {value!r} is not an email address")
    return v


#: ISO 3166-1 alpha-2 country codes (officially assigned), for checking a supplier's country.
COUNTRIES = _words("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE
JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO
MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM
TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""")
