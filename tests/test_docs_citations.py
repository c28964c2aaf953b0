"""Section citations of docs/nnie-facts.md and docs/wk-format.md resolve in the repository.

Code cites the two pages as ``nnie-facts.md §N`` (also ``nnie-facts §N`` and ``nnie-facts.md
section N``) and ``wk-format.md §N`` or ``§N.M`` (point M of section N's numbered list), including
lists and ranges (``§2, §3``, ``§2/§3``, ``§1-§3``). Inside an nnbuild module that cites exactly one
of the pages by section and no other document, a bare ``§N`` refers to that page too. Every cited
section must be a ``## N. ...`` heading of the page in docs/, so a clone can follow the citation.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from conftest import ROOT

DOCS = {"nnie-facts": ROOT / "docs" / "nnie-facts.md", "wk-format": ROOT / "docs" / "wk-format.md"}
# The topic of each section, as the code's citations use it: a renumbered page fails here.
TOPICS = {"nnie-facts": {1: "chips and mapper versions", 2: "cfg", 3: "input preprocessing",
                         4: "quantizer", 5: "prototxt rules", 6: ".wk file"},
          "wk-format": {1: "header", 2: "segment and node records", 3: "weight blocks",
                        4: "quantizer", 5: "tail"}}
SCANNED = ("nnbuild", "tests", "benchmarks", "recipes", "docs", "README.md")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".json"}
REF = r"(?:§|section )\s*(\d+(?:\.\d+)?)"
REFS = r"((?:(?:,|/|-|–|and|\s)*" + REF + r")+)"
CITATION = {doc: re.compile(re.escape(doc) + r"(?:\.md)?[,:]?\s*" + REFS) for doc in DOCS}
ANY_DOC_SECTION = re.compile(r"([\w.-]+)\.md[,:]?\s*§")


def headings(doc: str) -> dict[int, str]:
    """``## N. Title`` headings of a docs page -> {N: title}."""
    text = DOCS[doc].read_text(encoding="utf-8")
    return {int(n): title.strip() for n, title in re.findall(r"^## (\d+)\. (.+)$", text, re.M)}


def section_text(doc: str, n: int) -> str:
    """The body of section ``n`` of a docs page, up to the next ``## `` heading."""
    parts = re.split(r"^## (\d+)\. .*$", DOCS[doc].read_text(encoding="utf-8"), flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}[n]


def expand(group: str) -> list[str]:
    """``"§1-§3, §4.2"`` -> ``["1", "2", "3", "4.2"]`` (ranges of whole sections expanded)."""
    out: list[str] = []
    previous_end = 0
    for match in re.finditer(REF, group):
        ref, between = match.group(1), group[previous_end:match.start()]
        if out and re.fullmatch(r"\s*[-–]\s*", between) and "." not in out[-1] + ref:
            out += [str(n) for n in range(int(out[-1]) + 1, int(ref))]
        out.append(ref)
        previous_end = match.end()
    return out


def cited_sections(text: str, bare: bool) -> dict[str, list[str]]:
    """doc -> section references ``text`` makes; with ``bare``, see the module docstring."""
    found = {doc: [ref for group in pattern.findall(text) for ref in expand(group[0])]
             for doc, pattern in CITATION.items()}
    cited_docs = {name.rsplit("/", 1)[-1] for name in ANY_DOC_SECTION.findall(text)}
    cited_docs |= {doc for doc, refs in found.items() if refs}
    if bare and len(cited_docs) == 1 and cited_docs <= set(DOCS):
        (doc,) = cited_docs
        found[doc] += re.findall(r"§\s*(\d+(?:\.\d+)?)", text)
    return found


def resolves(doc: str, ref: str) -> bool:
    """True if section ``N`` (or point M of section N, for ``N.M``) exists in the docs page."""
    number, _, point = ref.partition(".")
    if int(number) not in headings(doc):
        return False
    return not point or re.search(rf"^{point}\. ", section_text(doc, int(number)), re.M) is not None


def scanned_files() -> list[pathlib.Path]:
    """Every text file of SCANNED except the two pages and this test (its examples are fake)."""
    files = []
    for name in SCANNED:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    skip = {pathlib.Path(__file__).resolve()} | {p.resolve() for p in DOCS.values()}
    return [p for p in files if p.resolve() not in skip and "__pycache__" not in p.parts]


def citations() -> list[tuple[str, str, str]]:
    """(file, doc, section) for every section citation of the two pages in the repository."""
    out = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        for doc, refs in cited_sections(text, bare=rel.parts[0] == "nnbuild").items():
            out += [(str(rel), doc, ref) for ref in refs]
    return out


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_page_is_in_the_repository_with_its_sections(doc):
    titles = headings(doc)
    assert sorted(titles) == list(range(1, len(titles) + 1))
    for n, topic in TOPICS[doc].items():
        assert topic in titles[n].lower(), (doc, n, titles[n])


def test_wk_format_section_4_keeps_its_numbered_points():
    assert all(resolves("wk-format", f"4.{m}") for m in range(1, 6))
    assert not resolves("wk-format", "4.6") and not resolves("wk-format", "6")


def test_every_citation_names_an_existing_section():
    found = citations()
    # The scan really sees the code's citations (a broken pattern must not pass vacuously).
    files = {f for f, doc, _ in found if doc == "nnie-facts" and f.startswith("nnbuild/")}
    assert len(found) >= 60 and len(files) >= 20
    missing = sorted({(f, doc, ref) for f, doc, ref in found if not resolves(doc, ref)})
    assert not missing, f"citations of sections missing in docs/: {missing}"


def test_no_citation_points_outside_the_repository():
    stale = [str(p.relative_to(ROOT)) for p in scanned_files()
             if re.search(r"shared/docs/(nnie-facts|wk-format)",
                          p.read_text(encoding="utf-8", errors="replace"))]
    assert not stale, f"cite docs/nnie-facts.md or docs/wk-format.md instead in: {stale}"


@pytest.mark.parametrize("text, doc, expected", [
    ("see nnie-facts.md §9.", "nnie-facts", ["9"]),
    ("(nnie-facts.md §2, §3)", "nnie-facts", ["2", "3"]),
    ("nnie-facts §2/§3 and §5", "nnie-facts", ["2", "3", "5"]),
    ("nnie-facts.md section 1", "nnie-facts", ["1"]),
    ("nnie-facts.md, \"RGB\" note", "nnie-facts", []),
    ("(wk-format.md §1-§3, §5)", "wk-format", ["1", "2", "3", "5"]),
    ("../shared/docs/wk-format.md §4.2;", "wk-format", ["4.2"]),
    ("(wk-format.md §2, nnie-facts §5)", "wk-format", ["2"]),
])
def test_citation_pattern(text, doc, expected):
    assert cited_sections(text, bare=False)[doc] == expected


def test_bare_sections_count_only_when_one_document_is_cited():
    assert cited_sections("nnie-facts.md §2 ... later (§7)", bare=True)["nnie-facts"] == [
        "2", "2", "7"]
    mixed = cited_sections("nnie-facts.md §2; wk-format.md §3 ... (§7)", bare=True)
    assert mixed == {"nnie-facts": ["2"], "wk-format": ["3"]}
    assert cited_sections("nnie-facts.md §2; design.md §3", bare=True)["nnie-facts"] == ["2"]
    assert not resolves("nnie-facts", "7")


def test_nnie_facts_section_2_names_every_cfg_key_nnbuild_writes():
    from nnbuild.nnie.cfg import make_cfg, parse_cfg
    from nnbuild.recipe.spec import RecipeSpec

    recipe = RecipeSpec.from_data({"input": {"color": "RGB", "mean": [1, 2, 3], "scale": 0.5},
                                   "calibration": {"count": 20},
                                   "target": {"chip": "hi3516dv300"}})
    keys = parse_cfg(make_cfg(recipe, instruction_name="inst/net")["nnie_mapper.cfg"])
    body = section_text("nnie-facts", 2)
    assert [k for k in keys if f"`{k}`" not in body] == []
    for fact in ("0.0039062", "1/4096", "_hp", "instructions_name", "20–50", "20.12", "24.0"):
        assert fact in body, fact


def test_nnie_facts_state_what_the_code_encodes():
    from nnbuild.nnie import chips, quantize

    s1 = section_text("nnie-facts", 1)
    for chip in chips.CHIPS.values():
        _, found, rest = s1.partition("Hi" + chip.name[2:].upper())
        bullet = rest.split("\n- ")[0]  # from the chip's first mention to the end of its item
        assert found and f"nnie_mapper_{chip.mapper_version}" in bullet, chip.name
        assert chip.tops is None or f"{chip.tops} TOPS" in bullet, chip.name
        assert chip.clock_mhz is None or f"{chip.clock_mhz} MHz" in bullet, chip.name
    assert "two NNIE cores" in s1 and "17 ms" in s1 and "34 ms" in s1
    assert str(quantize.OUTPUT_SCALE) in section_text("nnie-facts", 3)
    s4 = section_text("nnie-facts", 4)
    for levels, steps in quantize.FORMATS.values():
        assert f"{levels} * log2(m)" in s4 and f"k - {steps}" in s4
    s5 = section_text("nnie-facts", 5)
    chip = chips.get_chip(chips.DEFAULT_CHIP)
    for fact in (chip.max_width, chip.max_group, chip.max_segments, chip.max_segment_io,
                 chip.max_name_len, "1..255", "_hp", "_report", "(0,2,3,1)"):
        assert str(fact) in s5, fact
