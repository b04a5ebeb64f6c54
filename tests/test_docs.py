"""The project's documentation is its own, current and connected: no database needed.

* ``docs/configuration.md`` is what ``scope3 settings --markdown`` generates from the settings classes;
* nothing outside ``docs/``, ``tests/`` and ``.ci/`` cites a file outside the repository (``DESIGN.md``,
  ``../shared/``): the design is ``docs/design.md``;
* every relative link in ``README.md`` and ``docs/*.md`` reaches an existing file (and heading), and every
  page of ``docs/`` is linked from the README and from ``docs/index.md``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from click.testing import CliRunner

from scope3lib.cli import main
from scope3lib.config_reference import REGENERATE, markdown

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]

# Citations of files outside the repository. The design is docs/design.md.
OUTSIDE = ("DESIGN.md", "../shared/")
NOT_CHECKED = ("docs/", "tests/", ".ci/")


def test_configuration_reference_is_current() -> None:
    committed = (DOCS / "configuration.md").read_text()
    assert markdown() == committed, f"docs/configuration.md is out of date: regenerate it with `{REGENERATE}`"


def test_settings_markdown_command_prints_the_reference() -> None:
    result = CliRunner().invoke(main, ["settings", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == markdown()


def _repository_files() -> list[str]:
    """Tracked and new (not ignored) files, relative to the repository root."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                         capture_output=True, check=True).stdout
    return sorted({p for p in out.decode().split("\0") if p and (REPO / p).is_file()})


def test_nothing_cites_files_outside_the_repository() -> None:
    found = []
    for rel in _repository_files():
        if rel.startswith(NOT_CHECKED):
            continue
        data = (REPO / rel).read_bytes()
        for needle in OUTSIDE:
            if needle.encode() in data:
                line = data[: data.index(needle.encode())].count(b"\n") + 1
                found.append(f"{rel}:{line}: {needle}")
    assert not found, "files outside the repository are cited (the design is docs/design.md):\n" + "\n".join(found)


_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)", re.M)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _text(page: Path) -> str:
    """The page without code blocks and code spans, where brackets are not links."""
    return _CODE.sub("", _FENCE.sub("", page.read_text()))


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings: lower case, punctuation dropped, spaces as hyphens."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(page: Path) -> list[str]:
    return [a or b for a, b in _LINK.findall(_text(page))]


def test_relative_links_reach_existing_files_and_headings() -> None:
    broken = []
    for page in PAGES:
        for target in _links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif not dest.is_relative_to(REPO):
                broken.append(f"{where} (outside the repository)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{where} (no heading #{anchor})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme_and_the_index() -> None:
    pages = {p.name for p in DOCS.glob("*.md")}
    from_readme = {Path(t.partition("#")[0]).name for t in _links(REPO / "README.md") if t.startswith("docs/")}
    from_index = {Path(t.partition("#")[0]).name for t in _links(DOCS / "index.md") if "://" not in t}
    assert not pages - from_readme, f"pages the README does not link: {sorted(pages - from_readme)}"
    assert not pages - {"index.md"} - from_index, f"pages docs/index.md does not link: {sorted(pages - from_index)}"
