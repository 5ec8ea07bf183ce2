"""Provenance: every declaration's citations resolve against the paper digest the project ships
(``docs/PAPER.md``): the sections it cites exist, its source tags are the digest's, the numbers it gives as
the paper's appear there, and a threshold labelled the paper's is one the digest gives (issue 26, item 7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.verdicts.declaration import ThresholdKind
from harness.verdicts.declared import CLAIMS

pytestmark = pytest.mark.unit

DIGEST = (Path(__file__).parents[1] / "docs" / "PAPER.md").read_text()
HEADINGS = {match.group(1).rstrip(".") for match in re.finditer(r"^#+ (\d+(?:\.\d+)?)\.? ", DIGEST, re.MULTILINE)}
TAGS = {"ABS", "R", "NB", "REV", "3P", "REVIEW", "MEM"}  # docs/PAPER.md §0 ([R:sha], [NB:sha] name a commit)


def _rules(claim):
    yield "rule", claim.rule
    if claim.paper_rule:
        yield "paper_rule", claim.paper_rule
    for case, override in claim.cases.items():
        for name in ("rule", "paper_rule"):
            if getattr(override, name):
                yield f"{case}.{name}", getattr(override, name)


def _paper_values(claim):
    yield claim.paper
    yield from (case.paper for case in claim.cases.values() if case.paper)


def _numbers(text: str) -> list[str]:
    """The decimal numbers of a text, signs normalised to ASCII (1.00 and 1.0 kept as written)."""
    return re.findall(r"\d+(?:\.\d+)?", text.replace("−", "-"))


def _in_digest(number: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", DIGEST.replace("−", "-")) is not None


@pytest.mark.parametrize("claim", CLAIMS.values(), ids=lambda claim: claim.id)
def test_cited_sections_exist(claim):
    for name, rule in _rules(claim):
        for section in re.findall(r"docs/PAPER\.md §(\d+(?:\.\d+)?)", rule.origin):
            assert section in HEADINGS, f"{claim.id} {name} cites docs/PAPER.md §{section}, which has no such section"


@pytest.mark.parametrize("claim", CLAIMS.values(), ids=lambda claim: claim.id)
def test_source_tags_are_the_digests(claim):
    for value in _paper_values(claim):
        for tag in filter(None, re.split(r",\s*", value.source)):
            head = tag.split(":")[0].split()[0]
            assert head in TAGS, f"{claim.id}: source tag {tag!r} is not one of docs/PAPER.md §0's {sorted(TAGS)}"


@pytest.mark.parametrize("claim", [c for c in CLAIMS.values() if c.paper.model], ids=lambda claim: claim.id)
def test_the_papers_numbers_are_in_the_digest(claim):
    """A paper value with a model is a number the paper (or its code, notebooks, reviewers) reports: each
    of its numbers is in docs/PAPER.md."""
    for value in _paper_values(claim):
        missing = [number for number in _numbers(value.text) if not _in_digest(number)]
        assert not missing, f"{claim.id}: {value.text!r} gives {missing}, not in docs/PAPER.md"


def _section(number: str) -> str:
    """The text of docs/PAPER.md §number, up to the next heading."""
    match = re.search(rf"^#+ {re.escape(number)}\.? .*?(?=^#)", DIGEST + "\n#", re.MULTILINE | re.DOTALL)
    return match.group(0).replace("−", "-") if match else ""


@pytest.mark.parametrize("claim", CLAIMS.values(), ids=lambda claim: claim.id)
def test_a_threshold_labelled_the_papers_is_the_papers(claim):
    """A rule of kind "paper" cites the section of docs/PAPER.md that gives its number (the centre of
    ``_around``, else the threshold); a floor the suite chose is "generic", "paper-qualitative" or "suite
    control", on the paper's model as on every other."""
    for name, rule in _rules(claim):
        if rule.kind is not ThresholdKind.PAPER:
            continue
        number = f"{abs(rule.centre if rule.passes_when == 'abs_below' else rule.threshold):g}"
        sections = re.findall(r"docs/PAPER\.md §(\d+(?:\.\d+)?)", rule.origin)
        assert sections, f"{claim.id} {name}: labelled the paper's, but its origin cites no docs/PAPER.md section"
        assert any(re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", _section(s)) for s in sections), (
            f"{claim.id} {name}: labelled the paper's, but {number} is not in docs/PAPER.md §{', §'.join(sections)} "
            f"({rule.origin})")
