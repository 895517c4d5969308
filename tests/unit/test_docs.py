"""The design, the security requirements and the benchmarks travel with the code in docs/:
every requirement the code, the tests, the benchmarks or the README cite as ``S<number>``
exists in docs/SECURITY.md, and the README links the three documents."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SECURITY = DOCS / "SECURITY.md"
# Where requirements are cited: the code, its tests and benchmarks, and the documents.
CITING = ("layers", "functions", "src", "infra", "scripts", "bench", "tests", "docs")
CITING_SUFFIXES = (".py", ".md", ".html", ".txt", ".json", ".toml")
# S followed by one or two digits as a word: S13, (S26), S1-S32. ruff's rule codes (S101,
# S603) have three.
_CITATION = re.compile(r"(?<!\w)S(\d{1,2})(?!\w)")
# A requirement's definition: "- S27. A user belongs ..."
_REQUIREMENT = re.compile(r"^- S(\d+)\. ", re.MULTILINE)


def cited(text: str) -> set[int]:
    """The requirement numbers ``text`` cites, including both ends of a range such as S1-S32."""
    return {int(number) for number in _CITATION.findall(text)}


def requirements(text: str) -> list[int]:
    return [int(number) for number in _REQUIREMENT.findall(text)]


def citing_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "Makefile", REPO / "pyproject.toml"]
    for top in CITING:
        files.extend(
            path
            for path in sorted((REPO / top).rglob("*"))
            if path.suffix in CITING_SUFFIXES and path.is_file() and "__pycache__" not in path.parts
        )
    return files


def test_docs_holds_the_design_the_security_requirements_and_the_benchmarks() -> None:
    for name in ("DESIGN.md", "SECURITY.md", "BENCHMARKS.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"


def test_security_requirements_are_numbered_once_each_from_s1() -> None:
    numbers = requirements(SECURITY.read_text(encoding="utf-8"))
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 32, "S27-S32 (identity binding, step-up, concurrency) belong in it"


def test_every_cited_requirement_exists_in_docs_security_md() -> None:
    defined = set(requirements(SECURITY.read_text(encoding="utf-8")))
    missing = {
        f"S{number}": sorted(str(path.relative_to(REPO)) for path in files)
        for number, files in _citations(citing_files()).items()
        if number not in defined
    }
    assert missing == {}, "cited but not in docs/SECURITY.md"


def _citations(files: list[Path]) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for path in files:
        for number in cited(path.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(number, []).append(path)
    return found


def test_the_check_finds_citations_and_ignores_ruff_codes() -> None:
    text = "Refused as S26 says (S5); see S1-S32 and SECURITY.md S13. # noqa: S603, S101 S3Key"
    assert cited(text) == {26, 5, 1, 32, 13}


def test_attack_a_citation_of_a_requirement_that_does_not_exist_is_found(tmp_path: Path) -> None:
    planted = tmp_path / "module.py"
    # Spelt in two pieces, so that this file does not cite it itself.
    planted.write_text('"""Checked as S' + '99 requires."""\n', encoding="utf-8")
    defined = set(requirements(SECURITY.read_text(encoding="utf-8")))
    assert {number for number in _citations([planted]) if number not in defined} == {99}


def test_the_readme_links_the_documents_in_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("DESIGN.md", "SECURITY.md", "BENCHMARKS.md"):
        assert f"(docs/{name})" in readme, f"README.md does not link docs/{name}"
