"""The design, the security requirements and the benchmarks travel with the code in docs/:
every requirement the code, the tests, the benchmarks or the README cite as ``S<number>``
exists in docs/SECURITY.md, the README links the three documents, and DESIGN.md's public
surface names exactly the CLI's commands."""

from __future__ import annotations

import json
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


# A command as DESIGN.md's public surface names it: `idp user add|list|...`, `idp metadata`,
# `idp policy set|show APP ...` (what follows the alternatives is its arguments).
_COMMAND_SPAN = re.compile(r"`(idp [^`]+)`")


def documented_commands(text: str) -> set[str]:
    """The ``idp`` commands that ``text``'s code spans name, each alternative apart."""
    found: set[str] = set()
    for span in _COMMAND_SPAN.findall(text):
        words = span.split()
        if words[1].startswith("-"):
            continue  # A global option shown with "...", e.g. `idp --local ...`.
        path = ["idp"]
        for word in words[1:]:
            if "|" in word:
                found.update(" ".join([*path, alternative]) for alternative in word.split("|"))
                break
            if not word[0].islower():
                break
            path.append(word)
        else:
            found.add(" ".join(path))
    return found


def test_the_design_names_every_cli_command_and_no_other() -> None:
    """docs/DESIGN.md's public surface is the CLI as tests/unit/cli_surface.json pins it."""
    surface = json.loads((REPO / "tests" / "unit" / "cli_surface.json").read_text(encoding="utf-8"))
    commands = {name for name in surface if not any(other.startswith(f"{name} ") for other in surface)}
    named = documented_commands((DOCS / "DESIGN.md").read_text(encoding="utf-8"))
    assert sorted(commands - named) == [], "commands that docs/DESIGN.md does not name"
    assert sorted(named - commands) == [], "commands docs/DESIGN.md names that do not exist"


def test_the_command_reader_splits_alternatives_and_leaves_out_arguments() -> None:
    text = (
        "`idp user add|list`, `idp policy set|show APP ...`, `idp signing-key rotate\n  start|finish`, "
        "`idp doctor`, `idp --local ...`"
    )
    assert documented_commands(text) == {
        "idp user add",
        "idp user list",
        "idp policy set",
        "idp policy show",
        "idp signing-key rotate start",
        "idp signing-key rotate finish",
        "idp doctor",
    }
