"""A real company's own data: supplier records, ERP spend extracts, classification, supplier-reported figures.

The files are written here, shaped like real exports: a supplier master as CSV, an SAP-style AP extract
(Excel, European decimal commas, dd.mm.yyyy dates, euros, SAP's own headers and its trailing minus on
credits) and an Oracle/NetSuite-style one (CSV, US dates, dollars and pounds, other headers).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from scope3lib.accounting import inventory
from scope3lib.errors import DuplicateSupplier, ExtractError, RowsRefused, SupplierError
from scope3lib.suppliers import coverage, disclosures, records, spend
from scope3lib.suppliers.extracts import vendor_keys
from scope3lib.suppliers.identifiers import lei, name_key, vat_number, vendor_number
from scope3lib.suppliers.matching import SupplierIndex, match_vendors
from tests.helpers import TenantFactory, TenantFixture, invoke_cli

pytestmark = pytest.mark.db

VALID_LEI = "529900T8BM49AURSDO55"  # a real LEI (ISO 17442 check digits)

SUPPLIERS = """name,country,grid region,naics,annual spend,currency,year,lei,vat,duns,email,vendor id
Müller Stahl GmbH,DE,DE,331110,"1.200.000,00",EUR,2025,,DE123456789,,einkauf@mueller-stahl.example,0000100234
Northwind Freight Inc.,US,CAMX,484121,450000,USD,2025,529900T8BM49AURSDO55,,,ops@northwind.example,
Atlas Packaging Ltd,GB,GB,322211,80000,GBP,2023,,GB123456789,,,
Cobalt Software LLC,US,ERCT,541511,,,,,,123456789,,
"""


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _sap_extract(tmp: Path, rows: list[tuple[str, str, str, str, str, str, str, str]], name: str = "sap.xlsx") -> Path:
    """An SAP FBL1N-style export: Vendor, Name 1, Pstng Date, Amount in LC (text with decimal commas), Crcy,
    G/L Acct, Cost Ctr, Text, Material Group."""
    frame = pd.DataFrame(rows, columns=["Vendor", "Name 1", "Pstng Date", "Amount in LC", "Crcy", "G/L Acct",
                                        "Text", "Material Group"]).assign(**{"Cost Ctr": "4711"})
    path = tmp / name
    frame.to_excel(path, index=False)
    return path


SAP_ROWS = [
    ("0000100234", "MUELLER STAHL GMBH", "15.01.2025", "12.345,67", "EUR", "0000610000", "Stahlbleche", "MG-STEEL"),
    ("0000100234", "MUELLER STAHL GMBH", "20.01.2025", "1.000,00-", "EUR", "0000610000", "Gutschrift", "MG-STEEL"),
    ("0000100555", "Spedition Huber", "03.02.2025", "2.500,00", "EUR", "0000620000", "Fracht Hamburg", ""),
    ("0000100777", "Kantine Service", "10.02.2025", "800,50", "EUR", "0000690000", "Catering Januar", ""),
]

NETSUITE = """Date,Vendor,Account,Department,Memo,Amount,Currency,UNSPSC
01/15/2025,Northwind Freight,5200 Freight Expense,Logistics,Inbound freight Jan,"4,200.00",USD,78101800
01/28/2025,Cobalt Software L.L.C.,6100 Software,IT,Annual licence,"12,000.00",USD,43232300
02/11/2025,Atlas Packaging Limited,5000 COGS,Production,Corrugated boxes,"3,100.00",USD,24112700
02/20/2025,Acme Office Supplies,6500 Office,Admin,Printer paper and toner,250.00,USD,
"""


@pytest.fixture
def tenant(make_tenant: TenantFactory, tmp_path: Path) -> TenantFixture:
    t = make_tenant()
    records.import_suppliers(t.engine, _write(tmp_path, "suppliers.csv", SUPPLIERS))
    return t


def _count(t: TenantFixture, sql: str) -> int:
    with t.engine.connect() as c:
        return int(c.scalar(sa.text(sql)) or 0)


# --- identifiers -------------------------------------------------------------------------------------------


def test_names_and_identifiers_normalise_as_people_write_them() -> None:
    assert name_key("Müller Stahl GmbH") == name_key("MUELLER STAHL G.m.b.H.".replace("UE", "Ü")) == "muller stahl"
    assert name_key("Cobalt Software L.L.C.") == name_key("Cobalt Software LLC") == "cobalt software"
    assert name_key("Atlas Packaging Limited") == name_key("ATLAS PACKAGING LTD")
    assert lei(VALID_LEI.lower()) == VALID_LEI
    with pytest.raises(ValueError, match="check digits"):
        lei(VALID_LEI[:-1] + "6")
    assert vat_number("de 123.456.789") == "DE123456789"
    with pytest.raises(ValueError, match="country prefix"):
        vat_number("123456789")


def test_a_vendor_number_has_one_key_in_extracts_aliases_and_matching() -> None:
    cases = [("000123", "123"), (" 0042 ", "42"), ("123", "123"), ("000", "0"), ("0", "0"), ("A001", "A001"),
             ("0A1", "A1"), ("", None), ("   ", None), (None, None), (float("nan"), None)]
    assert [vendor_number(given) for given, _ in cases] == [key for _, key in cases]
    ids = pd.Series(["000123", "123", "000", " 0 ", "", "   "], dtype=object)
    names = pd.Series(["Acme", "Acme", "Zero Ltd", "Zero Ltd", "Named GmbH", "Named GmbH"], dtype=object)
    assert vendor_keys(ids, names).tolist() == ["id:123", "id:123", "id:0", "id:0", "name:named", "name:named"]
    index = SupplierIndex.build(pd.DataFrame({"id": [1, 2], "name": ["Acme Corp", "Zero Ltd Holdings"],
                                              "naics_code": [None, None], "lei": [None, None], "duns": [None, None],
                                              "vat_number": [None, None]}),
                                pd.DataFrame({"supplier_id": [1, 2], "kind": ["vendor_id"] * 2,
                                              "alias_key": [vendor_number("0123"), vendor_number("000")]}))
    found, how = match_vendors(pd.DataFrame({"vendor_id": ["123", "00", "", None],
                                             "vendor_name": ["x", "y", "z", "w"]}), index)
    assert found.tolist() == [1, 2, -1, -1] and how.tolist() == ["vendor_id", "vendor_id", "", ""]


# --- supplier records --------------------------------------------------------------------------------------


def test_supplier_import_creates_updates_and_keeps_history(tenant: TenantFixture, tmp_path: Path) -> None:
    df = records.suppliers(tenant.engine).set_index("name")
    assert len(df) == 4
    assert float(df.loc["Müller Stahl GmbH", "annual_spend"]) == 1_200_000.00  # "1.200.000,00"
    assert df.loc["Müller Stahl GmbH", "vat_number"] == "DE123456789"
    assert df.loc["Northwind Freight Inc.", "lei"] == VALID_LEI
    again = _write(tmp_path, "again.csv", "name,contact_email\nNORTHWIND FREIGHT INC,new@northwind.example\n"
                                          "Müller Stahl GmbH,einkauf@mueller-stahl.example\n")
    result = records.import_suppliers(tenant.engine, again)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    h = records.history(tenant.engine, "Northwind Freight Inc.")
    assert list(h["action"]) == ["create", "update"]
    assert h["changes"].iloc[-1]["contact_email"] == ["ops@northwind.example", "new@northwind.example"]
    assert h["actor"].iloc[-1] and h["role_name"].iloc[-1] == tenant.role
    with psycopg.connect(tenant.database_url) as conn, pytest.raises(psycopg.Error, match=r"append-only|permission"):
        conn.execute("DELETE FROM supplier_changes")


def test_bad_supplier_rows_are_listed_line_by_line_and_nothing_is_written(tenant: TenantFixture,
                                                                           tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.csv", "name,country,region,naics_code,lei,annual_spend,spend_currency,spend_year\n"
                                      "Good Co,US,CAMX,541511,,,,\n"
                                      "Nowhere Ltd,XX,,,,,,\n"
                                      "Strange Sector Inc,US,,999999,,,,\n"
                                      "Moon Grid Corp,US,MOON,,,,,\n"
                                      "Bad Lei SA,FR,,,529900T8BM49AURSDO56,,,\n"
                                      "GOOD CO.,US,,,,,,\n"
                                      "Spendthrift,US,,,,5000,,\n")
    with pytest.raises(RowsRefused) as err:
        records.import_suppliers(tenant.engine, bad)
    lines: dict[int, str] = {}
    for line, reason in err.value.problems:
        lines[line] = lines.get(line, "") + reason + "; "
    assert "ISO 3166" in lines[3] and "no spend-based factor" in lines[4] and "grid region" in lines[5]
    assert "check digits" in lines[6] and "same company as line 2" in lines[7] and "currency" in lines[8]
    assert 2 not in lines
    assert _count(tenant, "SELECT count(*) FROM suppliers") == 4


def test_duplicates_by_identifier_and_name_are_refused(tenant: TenantFixture) -> None:
    with pytest.raises(DuplicateSupplier, match="DE123456789"):
        records.create(tenant.engine, name="Mueller Steel", vat_number="DE 123 456 789")
    with pytest.raises(DuplicateSupplier, match="same company"):
        records.create(tenant.engine, name="ATLAS PACKAGING LIMITED")
    sid = records.create(tenant.engine, name="Granite Cement", country="US", naics_code="327310")
    assert records.find(tenant.engine.connect(), sid)["name"] == "Granite Cement"


def test_merge_archive_and_restore_through_the_cli(tenant: TenantFixture, database_url: str,
                                                   data_dir: Path) -> None:
    dup = records.create(tenant.engine, name="Northwind Logistics", contact_email="x@northwind.example")
    r = invoke_cli(database_url, data_dir, "suppliers", "merge", tenant.slug, "Northwind Freight Inc.", str(dup),
                   "--reason", "same company, two ERP records")
    assert r.exit_code == 0, r.output
    merged = records.find(tenant.engine.connect(), dup)
    assert merged["merged_into"] is not None and merged["archived_at"] is not None
    shown = records.show(tenant.engine, "Northwind Freight Inc.")
    assert any(a["alias"] == "Northwind Logistics" for a in shown["aliases"])
    r = invoke_cli(database_url, data_dir, "suppliers", "archive", tenant.slug, "Cobalt Software LLC")
    assert r.exit_code == 0, r.output
    listed = invoke_cli(database_url, data_dir, "suppliers", "list", tenant.slug)
    assert "Cobalt" not in listed.output and "Atlas Packaging" in listed.output
    r = invoke_cli(database_url, data_dir, "suppliers", "update", tenant.slug, "Atlas Packaging Ltd", "--set",
                   "country=ZZ")
    assert r.exit_code == 1 and "ISO 3166" in r.output
    r = invoke_cli(database_url, data_dir, "suppliers", "show", tenant.slug, "Northwind Freight Inc.")
    assert r.exit_code == 0 and "merge" in r.output and "update" in r.output, r.output
    with pytest.raises(SupplierError, match="already merged"):
        records.archive(tenant.engine, dup)


# --- spend extracts ----------------------------------------------------------------------------------------


def _rules(t: TenantFixture) -> None:
    spend.confirm_sector(t.engine, "gl_account", "620000", 4, "484121")  # freight accounts
    spend.confirm_sector(t.engine, "commodity", "4323", 1, "541511")  # UNSPSC software family
    spend.confirm_sector(t.engine, "keyword", "boxes", 1, "322211")


def test_sap_and_netsuite_extracts_become_traceable_spend_based_entries(tenant: TenantFixture,
                                                                        tmp_path: Path) -> None:
    _rules(tenant)
    sap = spend.import_extract(tenant.engine, _sap_extract(tmp_path, SAP_ROWS), mapping="sap")
    assert (sap.lines, sap.matched, sap.classified) == (4, 2, 3)  # Müller by vendor id; the canteen unclassified
    ns = spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE), mapping="netsuite")
    assert (ns.lines, ns.matched, ns.classified) == (4, 3, 3)
    e = inventory.entries(tenant.engine)
    mueller = e[e["supplier"] == "Müller Stahl GmbH"].iloc[0]
    assert float(mueller["spend"]) == pytest.approx(11_345.67)  # the credit note nets the invoice
    assert mueller["spend_currency"] == "EUR" and mueller["factor_key"] == "331110"  # from the supplier record
    assert mueller["method"] == "spend_based" and mueller["category"] == 1
    freight = e[e["description"].str.contains("Spedition Huber")].iloc[0]
    assert freight["category"] == 4 and freight["factor_key"] == "484121" and pd.isna(freight["supplier_id"])
    lines = spend.trace(tenant.engine, int(mueller["id"]))
    assert list(lines["line_no"]) == [2, 3] and set(lines["file_name"]) == {"sap.xlsx"}
    assert lines["line_hash"].str.len().eq(64).all()
    with tenant.engine.connect() as c:
        saved = c.execute(sa.text("SELECT name, decimal, date_format FROM column_mappings ORDER BY name")).all()
    assert [tuple(r) for r in saved] == [("netsuite", ".", "%m/%d/%Y"), ("sap", ",", "%d.%m.%Y")]


def test_the_same_extract_again_changes_nothing(tenant: TenantFixture, tmp_path: Path) -> None:
    path = _write(tmp_path, "netsuite.csv", NETSUITE)
    spend.import_extract(tenant.engine, path)
    before = _count(tenant, "SELECT count(*) FROM ledger_leaves")
    again = spend.import_extract(tenant.engine, path)
    assert again.unchanged and "nothing changed" in again.sentence()
    assert _count(tenant, "SELECT count(*) FROM ledger_leaves") == before


def test_a_corrected_extract_replaces_old_lines_through_the_ledger(tenant: TenantFixture, tmp_path: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "jan.csv", NETSUITE))
    corrected = NETSUITE.replace('"4,200.00"', '"4,800.00"').replace("02/20/2025,Acme", "02/21/2025,Acme")
    path = _write(tmp_path, "jan-corrected.csv", corrected)
    with pytest.raises(ExtractError, match="--replace"):
        spend.import_extract(tenant.engine, path)
    r = spend.import_extract(tenant.engine, path, replace=True, reason="freight invoice re-booked by AP")
    assert r.updated == 1 and r.created == 0 and r.deleted == 0 and r.replaced
    with tenant.engine.connect() as c:
        leaf = c.execute(sa.text("SELECT event, reason FROM ledger_leaves ORDER BY leaf_index DESC LIMIT 1")).one()
        active = c.scalar(sa.text("SELECT count(*) FROM spend_lines WHERE active"))
    assert tuple(leaf) == ("recalculate", "freight invoice re-booked by AP") and active == 4
    freight = inventory.entries(tenant.engine)
    assert float(freight.loc[freight["supplier"] == "Northwind Freight Inc.", "spend"].iloc[0]) == 4800.0


def test_a_closed_period_is_refused(tenant: TenantFixture, tmp_path: Path) -> None:
    inventory.create_period(tenant.engine, "FY2025", "2025-01-01", "2025-12-31")
    inventory.close_period(tenant.engine, "FY2025")
    with pytest.raises(ExtractError, match="closed"):
        spend.import_extract(tenant.engine, _write(tmp_path, "late.csv", NETSUITE))
    assert _count(tenant, "SELECT count(*) FROM spend_imports") == 0


def test_bad_lines_are_listed_with_their_reasons_and_nothing_is_written(tenant: TenantFixture,
                                                                         tmp_path: Path) -> None:
    bad = NETSUITE + "13/45/2025,Someone,6500 Office,Admin,x,10.00,USD,\n" \
                     "02/22/2025,Someone,6500 Office,Admin,x,ten,USD,\n" \
                     "02/23/2025,Someone,6500 Office,Admin,x,10.00,CHF,\n" \
                     "02/24/2025,,6500 Office,Admin,x,10.00,USD,\n"
    with pytest.raises(RowsRefused) as err:
        spend.import_extract(tenant.engine, _write(tmp_path, "bad.csv", bad), date_format="%m/%d/%Y")
    reasons = dict(err.value.problems)
    assert "not a date" in reasons[6] and "not a number" in reasons[7] and "CHF" in reasons[8]
    assert "no vendor" in reasons[9] and len(reasons) == 4
    assert _count(tenant, "SELECT count(*) FROM spend_lines") == 0
    assert _count(tenant, "SELECT count(*) FROM emission_entries") == 0


def test_unclassified_lines_get_suggestions_and_a_confirmation_becomes_a_rule(tenant: TenantFixture,
                                                                              tmp_path: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    todo = spend.unclassified(tenant.engine)
    paper = todo[todo["vendor_name"] == "Acme Office Supplies"].iloc[0]
    assert paper["suggestions"] and all(len(s[0]) == 6 for s in paper["suggestions"])
    before = _count(tenant, "SELECT count(*) FROM emission_entries")
    spend.confirm_sector(tenant.engine, "vendor", paper["vendor_key"], 1, "322211")
    assert _count(tenant, "SELECT count(*) FROM emission_entries") == before + 1
    assert "Acme Office Supplies" not in set(spend.unclassified(tenant.engine)["vendor_name"])
    with pytest.raises(Exception, match="no spend-based method"):
        spend.confirm_sector(tenant.engine, "keyword", "toner", 11, "322211")


def test_fuzzy_candidates_are_only_suggested_until_confirmed(tenant: TenantFixture, tmp_path: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE.replace(
        "Northwind Freight,", "Northwnd Freight Co,")))
    todo = spend.unmatched(tenant.engine).set_index("vendor_name")
    cands = todo.loc["Northwnd Freight Co", "candidates"]
    assert cands[0][1] == "Northwind Freight Inc."
    assert _count(tenant, "SELECT count(*) FROM spend_lines WHERE supplier_id IS NULL") == 2
    spend.confirm_match(tenant.engine, todo.loc["Northwnd Freight Co", "vendor_key"], cands[0][0])
    assert _count(tenant, "SELECT count(*) FROM spend_lines WHERE supplier_id IS NULL") == 1


def test_supplier_disclosures_price_their_spend_and_raise_the_primary_share(tenant: TenantFixture,
                                                                            tmp_path: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    before = coverage.coverage(tenant.engine)
    disclosures.record(tenant.engine, [
        {"supplier": "Northwind Freight Inc.", "year": "2025", "scope1_kg": "2.000.000", "scope2_kg": "150.000,00",
         "revenue": "40.000.000", "currency": "USD", "verification": "limited",
         "source_document": "CDP 2025 response, section C6"},
        {"supplier": "123456789", "year": "2024", "scope1_kg": "10000", "scope2_kg": "5000", "upstream_kg": "80000",
         "revenue": "5000000", "currency": "USD", "verification": "none", "source_document": "email 2024-03-01"},
        {"supplier": "Atlas Packaging Ltd", "year": "2023", "scope1_kg": "300000", "scope2_kg": "100000",
         "revenue": "9000000", "currency": "GBP", "verification": "reasonable", "source_document": "annual report"},
    ])
    e = inventory.entries(tenant.engine).set_index("supplier")
    # A carrier's own scope 1 and 2 are its service's emissions: supplier-specific; with upstream figures too,
    # supplier-specific (Cobalt, found by its DUNS number); scope 1 and 2 of a goods supplier: hybrid.
    assert e.loc["Northwind Freight Inc.", "method"] == "supplier_specific"
    assert e.loc["Northwind Freight Inc.", "kg_co2e"] == pytest.approx(2_150_000 * 4200 / 40_000_000)
    assert e.loc["Cobalt Software LLC", "method"] == "supplier_specific"
    assert e.loc["Atlas Packaging Ltd", "method"] == "hybrid"
    after = coverage.coverage(tenant.engine)
    assert after.supplier_data_share > before.supplier_data_share
    with pytest.raises(RowsRefused, match="verification"):
        disclosures.record(tenant.engine, [{"supplier": "Atlas Packaging Ltd", "year": "2025", "scope1_kg": "1",
                                            "scope2_kg": "1", "revenue": "10", "currency": "GBP",
                                            "verification": "audited", "source_document": "x"}])


def test_coverage_in_the_inventory_summary_command(tenant: TenantFixture, tmp_path: Path, database_url: str,
                                                   data_dir: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    c = coverage.coverage(tenant.engine)
    assert 0 < c.classified_share < 1 and 0 < c.matched_share < 1
    assert c.largest_unclassified.iloc[0]["vendor_name"] == "Acme Office Supplies"
    r = invoke_cli(database_url, data_dir, "inventory", "summary", tenant.slug)
    assert r.exit_code == 0 and "classified" in r.output and "Acme Office Supplies" in r.output, r.output


def test_other_tenants_never_see_spend_lines(tenant: TenantFixture, make_tenant: TenantFactory,
                                             tmp_path: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    other = make_tenant()
    with other.engine.connect() as c:
        for table in ("spend_lines", "spend_imports", "supplier_changes", "classification_rules", "column_mappings"):
            assert c.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0, table


# --- what people see ---------------------------------------------------------------------------------------

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "analyst" / "onboarding.ipynb"


def test_coverage_panel_and_the_review_widgets(tenant: TenantFixture, tmp_path: Path) -> None:
    from scope3lib.reporting import panels
    from scope3lib.suppliers.review import OnboardingReview

    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    ctx = panels.PanelContext(tenant.readonly, inventory.entries(tenant.readonly), slug=tenant.slug)
    panel = panels.build("coverage", ctx)
    assert panel.state == "ok" and "classified" in panel.html() and "Acme Office Supplies" in panel.html()
    box = OnboardingReview(tenant.engine).widget()
    buttons = [w for w in _walk(box) if type(w).__name__ == "Button"]
    assert buttons, "a Confirm button per unclassified line"
    buttons[0].click()  # the first suggestion, for the vendor: becomes a rule
    assert _count(tenant, "SELECT count(*) FROM classification_rules WHERE kind = 'vendor'") == 1


def _walk(widget: object) -> list[object]:
    children = list(getattr(widget, "children", ()))
    return [widget, *[w for c in children for w in _walk(c)]]


def test_onboarding_notebook_runs_on_a_tenant(tenant: TenantFixture, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    monkeypatch.setenv("SCOPE3_TENANT_DATABASE_URL", tenant.database_url)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Spend from ERP extracts" in printed and "4 suppliers" in printed


def test_the_spend_commands_import_review_classify_and_trace(tenant: TenantFixture, tmp_path: Path,
                                                               database_url: str, data_dir: Path) -> None:
    path = _sap_extract(tmp_path, SAP_ROWS)
    r = invoke_cli(database_url, data_dir, "spend", "import", tenant.slug, str(path), "--mapping", "sap")
    assert r.exit_code == 0 and "imported 4 lines" in r.output, r.output
    r = invoke_cli(database_url, data_dir, "spend", "unclassified", tenant.slug)
    assert r.exit_code == 0 and "Spedition Huber" in r.output and "Kantine Service" in r.output, r.output
    r = invoke_cli(database_url, data_dir, "spend", "classify", tenant.slug, "gl_account", "0000620000",
                   "--category", "4", "--naics", "484121")
    assert r.exit_code == 0, r.output
    r = invoke_cli(database_url, data_dir, "spend", "classify", tenant.slug, "keyword", "catering",
                   "--category", "3", "--naics", "722310")
    assert r.exit_code == 2 and "no spend-based method" in r.output, r.output
    e = inventory.entries(tenant.engine)
    freight = int(e.loc[e["description"].str.contains("Spedition Huber"), "id"].iloc[0])
    r = invoke_cli(database_url, data_dir, "spend", "trace", tenant.slug, str(freight))
    assert r.exit_code == 0 and "sap.xlsx" in r.output and "Fracht Hamburg" in r.output, r.output
    bad = _write(tmp_path, "bad.csv", "Vendor,Amount\nX,1\n")
    r = invoke_cli(database_url, data_dir, "spend", "import", tenant.slug, str(bad), "--mapping", "other")
    assert r.exit_code != 0 and "posting_date" in r.output and "--column" in r.output, r.output


def test_the_history_names_the_hub_user(tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ana")
    records.update(tenant.engine, "Atlas Packaging Ltd", reason="new contact", contact_email="ana@atlas.example")
    last = records.history(tenant.engine, "Atlas Packaging Ltd").iloc[-1]
    assert (last["actor"], last["action"], last["reason"]) == ("ana", "update", "new contact")
    assert last["changes"]["contact_email"] == [None, "ana@atlas.example"]


ORACLE = ("Supplier Number,Supplier Name,VAT Registration No.,GL Date,Accounted Amount,Currency Code,"
          "Natural Account,Line Description\n") + """\
S-9001,Mueller Stahl,DE 123 456 789,2023-03-31,"8,000.00",GBP,610000,Steel coils Q1
S-9002,Harbor Hotels plc,,2024-06-15,"1,250.50",EUR,640000,Hotel stay Hamburg
S-9003,Northwind Freight,,2022-11-02,(300.00),USD,620000,Freight credit
S-9003,Northwind Freight,,2022-11-03,"2,300.00",USD,620000,Freight November
"""


def test_an_oracle_extract_matches_by_vat_number_over_currencies_and_years(tenant: TenantFixture,
                                                                          tmp_path: Path) -> None:
    spend.confirm_sector(tenant.engine, "keyword", "hotel", 6, "721110")
    r = spend.import_extract(tenant.engine, _write(tmp_path, "oracle.csv", ORACLE), mapping="oracle")
    assert (r.lines, r.matched, r.classified) == (4, 3, 4)
    e = inventory.entries(tenant.engine).set_index("description")
    steel = e.loc["Spend extract: Mueller Stahl (1 lines)"]
    assert steel["supplier"] == "Müller Stahl GmbH" and steel["spend_currency"] == "GBP" and steel["spend_year"] == 2023
    hotel = e.loc["Spend extract: Harbor Hotels plc (1 lines)"]
    assert hotel["category"] == 6 and hotel["spend_currency"] == "EUR" and hotel["spend_year"] == 2024
    freight = e.loc["Spend extract: Northwind Freight (2 lines)"]
    assert float(freight["spend"]) == 2000.0 and freight["period_start"] == pd.Timestamp("2022-11-01").date()
    # kg = spend converted to 2022 USD times the sector factor: the engine's own conversion.
    assert freight["kg_co2e"] == pytest.approx(2000.0 * float(freight["factor_value"]))


def test_a_merge_moves_spend_and_open_entries_through_the_ledger(tenant: TenantFixture, tmp_path: Path) -> None:
    spend.import_extract(tenant.engine, _write(tmp_path, "netsuite.csv", NETSUITE))
    labs = records.create(tenant.engine, name="Cobalt Labs", country="US")
    records.merge(tenant.engine, labs, "Cobalt Software LLC", reason="Cobalt Software was renamed Cobalt Labs")
    e = inventory.entries(tenant.engine)
    assert "Cobalt Software LLC" not in set(e["supplier"]) and "Cobalt Labs" in set(e["supplier"])
    with tenant.engine.connect() as c:
        leaf = c.execute(sa.text("SELECT event, reason FROM ledger_leaves ORDER BY leaf_index DESC LIMIT 1")).one()
        moved = c.scalar(sa.text("SELECT count(*) FROM spend_lines WHERE supplier_id = :s"), {"s": labs})
    assert leaf[0] == "correct" and "renamed Cobalt Labs" in leaf[1] and moved == 1
    assert records.find(tenant.engine.connect(), labs)["duns"] == "123456789"  # the identifier moved with it


def test_records_entered_before_the_checks_are_listed_as_likely_duplicates(tenant: TenantFixture,
                                                                           database_url: str,
                                                                           data_dir: Path) -> None:
    with tenant.engine.begin() as c:  # as SQL typed in a notebook could, before any check
        c.execute(sa.text("INSERT INTO suppliers (tenant_id, name) VALUES (tenant_of(current_user), "
                          "'ATLAS PACKAGING LIMITED')"))
    d = records.duplicates(tenant.engine)
    assert set(d["name"]) == {"Atlas Packaging Ltd", "ATLAS PACKAGING LIMITED"} and d["key"].nunique() == 1
    r = invoke_cli(database_url, data_dir, "suppliers", "duplicates", tenant.slug)
    assert r.exit_code == 0 and "ATLAS PACKAGING LIMITED" in r.output, r.output
