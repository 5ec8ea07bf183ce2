"""Claims are declared once (``harness/verdicts/declared.py``): every claim test names a declaration, every
declaration is tested, and the decision rule does what its declaration says."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from harness.verdicts.record import ClaimRecord
from harness.verdicts.declared import CLAIMS, declared
from harness.verdicts.declaration import Case, Claim, PaperValue, Rule, ThresholdKind, Verdict
from harness.measures.statistics import Estimate

CLAIMS_DIR = Path(__file__).parents[1] / "claims"


def _marked_claim_ids() -> dict[str, str]:
    """``{claim id: test}`` of every ``@pytest.mark.claim(ID)`` in claims/*.py."""
    found = {}
    for path in CLAIMS_DIR.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                            and decorator.func.attr == "claim"):
                        found[decorator.args[0].value] = f"{path.name}::{node.name}"
    return found


def test_every_claim_test_names_a_declared_claim():
    marked = _marked_claim_ids()
    assert marked, "no claim test found"
    undeclared = {claim: test for claim, test in marked.items() if claim not in CLAIMS}
    assert not undeclared


def test_every_declared_claim_has_a_test():
    assert set(CLAIMS) - set(_marked_claim_ids()) == set()


def test_declarations_are_complete():
    for claim in CLAIMS.values():
        assert claim.section.startswith("§") and claim.statement and claim.statistic and claim.paper.text
        assert claim.family == claim.id.split(".")[0]
        for case in claim.cases.values():
            assert case.paper or case.rule or case.paper_rule


def test_unknown_claim_names_the_declared_ones():
    with pytest.raises(KeyError, match="declared: D1"):
        declared("Z9")


@pytest.mark.parametrize("rule, measured, passes", [
    (Rule(0.75, "above", ThresholdKind.GENERIC), 0.75, True),
    (Rule(0.75, "above", ThresholdKind.GENERIC), 0.7499, False),
    (Rule(0.0, "above", ThresholdKind.GENERIC, strict=True), 0.0, False),
    (Rule(0.15, "below", ThresholdKind.GENERIC), 0.15, True),
    (Rule(50.0, "above", ThresholdKind.GENERIC, strict=True), 50.0, False),
    (Rule(5.0, "abs_below", ThresholdKind.GENERIC), -5.0, True),
    (Rule(5.0, "abs_below", ThresholdKind.GENERIC), 5.1, False),
    (Rule(0.1, "abs_below", ThresholdKind.GENERIC, centre=0.5), 0.61, False),
    (Rule(0.1, "abs_below", ThresholdKind.GENERIC, centre=0.5), 0.41, True),
    (Rule(0.75, "above", ThresholdKind.GENERIC), math.nan, False),
])
def test_rule_decides_as_declared(rule, measured, passes):
    assert rule.passes(measured) is passes


def test_unknown_side_is_refused():
    with pytest.raises(ValueError, match="accepted: above, below, abs_below"):
        Rule(1.0, "greater", ThresholdKind.GENERIC)


def test_data_dependent_threshold_must_come_from_the_test_and_only_there():
    open_rule = Rule(None, "above", ThresholdKind.GENERIC, "max(20, 5 x random)")
    assert open_rule.data_dependent
    with pytest.raises(ValueError, match="pass threshold"):
        open_rule.resolved()
    assert open_rule.resolved(threshold=31.0).passes(31.0)
    with pytest.raises(ValueError, match="declares its own threshold"):
        Rule(0.5, "above", ThresholdKind.GENERIC).resolved(threshold=0.1)


def test_paper_rule_applies_on_the_paper_model_only_and_cases_override():
    generic, paper_rule, case_rule = (Rule(1.0, "above", ThresholdKind.GENERIC), Rule(2.0, "above", ThresholdKind.PAPER),
                                      Rule(3.0, "above", ThresholdKind.GENERIC))
    claim = Claim("X1", "§1", "s", "t", PaperValue("v", "gpt2-small", "3P"), generic, paper_rule=paper_rule,
                  cases={"c": Case(paper=PaperValue("w", "gpt2-small"), rule=case_rule)})
    assert claim.rule_for("smollm2-135m") is generic
    assert claim.rule_for("gpt2-small") is paper_rule
    assert claim.rule_for("smollm2-135m", "c") is case_rule
    assert claim.rule_for("gpt2-small", "c") is paper_rule
    assert claim.paper_value("c").text == "w" and claim.paper_value().text == "v"


def _estimate(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, 30, "prompts", "test")


def test_record_is_decided_by_the_ci_and_the_preconditions():
    claim = declared("M2.ratio")
    rule = claim.rule_for("smollm2-135m")
    decide = lambda estimate, **kw: ClaimRecord.decide(claim, rule, estimate, **kw).verdict
    assert decide(_estimate(0.8, 0.6, 0.9)) == Verdict.REPLICATES
    assert decide(_estimate(0.8, 0.4, 0.9)) == Verdict.INCONCLUSIVE
    assert decide(_estimate(0.3, 0.2, 0.45)) == Verdict.DOES_NOT_REPLICATE
    assert decide(_estimate(0.8, 0.6, 0.9), preconditions={"pre-comma effect < 0": False}) == Verdict.NOT_APPLICABLE
    record = ClaimRecord.decide(claim, rule, _estimate(0.8, 0.6, 0.9))
    assert (record.threshold, record.passes_when, record.threshold_kind, record.n) == (0.5, "above", "generic", 30)
    assert record.claim == "M2.ratio" and record.section == "§5.7" and record.passed


@pytest.mark.parametrize("passes_when, strict, ci, verdict", [
    ("above", False, (1.0, 2.0), Verdict.REPLICATES), ("above", True, (1.0, 2.0), Verdict.INCONCLUSIVE),
    ("above", False, (0.0, 0.99), Verdict.DOES_NOT_REPLICATE), ("below", False, (0.0, 1.0), Verdict.REPLICATES),
    ("below", False, (0.5, 1.5), Verdict.INCONCLUSIVE), ("below", False, (1.01, 2.0), Verdict.DOES_NOT_REPLICATE),
    ("abs_below", False, (-0.5, 0.5), Verdict.REPLICATES), ("abs_below", False, (0.5, 1.5), Verdict.INCONCLUSIVE),
    ("abs_below", False, (1.5, 2.0), Verdict.DOES_NOT_REPLICATE),
    ("abs_below", False, (-3.0, -1.5), Verdict.DOES_NOT_REPLICATE),
])
def test_rule_decides_from_the_whole_ci(passes_when, strict, ci, verdict):
    rule = Rule(1.0, passes_when, ThresholdKind.GENERIC, strict=strict)
    assert rule.decide(*ci) is verdict


def test_n_to_decide_scales_with_the_squared_ratio_of_half_width_to_distance():
    rule = Rule(0.5, "above", ThresholdKind.GENERIC)
    assert rule.n_to_decide(0.6, 0.4, 0.8, 100) == 400  # half-width 0.2, distance 0.1: 4 times n
    assert rule.n_to_decide(0.5, 0.4, 0.6, 100) is None


def test_record_names_the_paper_model_when_the_paper_threshold_applies():
    claim = declared("P3")
    record = ClaimRecord.decide(claim, claim.rule_for("pythia-1.4b", "ld_recovered"), _estimate(50.0, 40.0, 58.0),
                                case="ld_recovered")
    assert record.threshold_source == "paper (pythia-1.4b)" and record.paper_value.endswith("(pythia-1.4b [3P])")
    assert record.tolerance == "|value − 47| <= 15%" and record.passed
    flip = declared("P1").rule_for("pythia-1.4b", "logit_flip")  # the suite's floor, on the paper's model too
    assert flip.kind is ThresholdKind.GENERIC and flip.threshold == 90.0


# Protocol numbers: declared once, read by the fixtures, passed to the experiments ---------------------------

HARNESS_DIR = Path(__file__).parents[1] / "harness"
ROOT = HARNESS_DIR.parent
# The modules that run an experiment with its protocol numbers (the experiments layer, the patching sweep and
# the transfer samples): they take the numbers as arguments and define none.
EXPERIMENT_MODULES = sorted((HARNESS_DIR / "experiments").glob("*.py")) + [
    HARNESS_DIR / "interventions" / "sweep.py", HARNESS_DIR / "datasets" / "transfer.py"]


def _protocols() -> dict[str, dict]:
    """``{claim id: protocol}`` of every declaration with one."""
    return {claim.id: dict(claim.protocol) for claim in CLAIMS.values() if claim.protocol}


def _protocol_numbers() -> dict[str, set[str]]:
    """``{key: claim ids}`` of every protocol setting (numbers, tuples, names), its prose (text with a space) left out."""
    found: dict[str, set[str]] = {}
    for claim_id, protocol in _protocols().items():
        for key, value in protocol.items():
            if not (isinstance(value, str) and " " in value):
                found.setdefault(key, set()).add(claim_id)
    return found


def _is_number(node: ast.AST) -> bool:
    """A numeric literal (bools are flags, not numbers), a negated one, or a container holding one."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_number(element) for element in node.elts)
    if isinstance(node, ast.Dict):
        return any(_is_number(value) for value in node.values)
    return False


def _numeric_constants(source: str) -> list[str]:
    """Public module-level names, and dataclass field defaults, bound to a numeric literal in ``source``
    (a ``seed`` field's default, the session's seed when ``--seeds`` is not given, is not a protocol number)."""
    tree = ast.parse(source)
    found = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign)
                   else [])
        for target in targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            values = node.value.elts if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) else [
                node.value] * len(names)
            found += [name.id for name, value in zip(names, values)
                      if isinstance(name, ast.Name) and not name.id.startswith("_") and value is not None
                      and _is_number(value)]
        if isinstance(node, ast.ClassDef):
            found += [f"{node.name}.{field.target.id}" for field in node.body
                      if isinstance(field, ast.AnnAssign) and field.value is not None and _is_number(field.value)
                      and field.target.id != "seed"]
    return found


def test_the_numeric_constant_check_finds_what_it_looks_for():
    source = ("N_PAIRS = 24\nQUANTILE: float = 0.975\nSPAN = (0, -11)\n_CHUNK = 50\nNAMES = ('a', 'b')\nFLAG = True\n"
              "LOW, HIGH = 1, 'x'\nclass Settings:\n    top_heads: int = 12\n    method: str = 'das'\n"
              "    seed: int = 0\n")
    assert _numeric_constants(source) == ["N_PAIRS", "QUANTILE", "SPAN", "LOW", "Settings.top_heads"]


@pytest.mark.parametrize("path", EXPERIMENT_MODULES, ids=lambda p: str(p.relative_to(HARNESS_DIR)))
def test_experiment_modules_define_no_protocol_numbers(path):
    """A sample size, quantile, floor or count a claim uses is declared in ``harness/verdicts/declared.py``
    (a claim's ``protocol``, or its rule) and passed in by the fixture, as S1's ``STEERING_PROTOCOL`` is;
    an experiment module defining one would be a second, untied definition."""
    assert _numeric_constants(path.read_text()) == [], (
        f"{path.relative_to(ROOT)} defines protocol numbers: declare them in a claim's protocol "
        "(harness/verdicts/declared.py) and have its fixture pass them in")


def _parameters_with_defaults(source: str) -> set[str]:
    """Names of the function parameters and dataclass fields of ``source`` that have a default."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            positional = node.args.posonlyargs + node.args.args
            found |= {arg.arg for arg in positional[len(positional) - len(node.args.defaults):]}
            found |= {arg.arg for arg, default in zip(node.args.kwonlyargs, node.args.kw_defaults) if default is not None}
        elif isinstance(node, ast.ClassDef):
            found |= {field.target.id for field in node.body
                      if isinstance(field, ast.AnnAssign) and field.value is not None and isinstance(field.target, ast.Name)}
    return found


@pytest.mark.parametrize("path", EXPERIMENT_MODULES, ids=lambda p: str(p.relative_to(HARNESS_DIR)))
def test_protocol_parameters_have_no_defaults(path):
    """A parameter named after a protocol setting has no default: the caller (the fixture) passes the
    declared value, so a second value cannot creep in as a default."""
    defaulted = _parameters_with_defaults(path.read_text()) & set(_protocol_numbers())
    assert not defaulted, f"{path.relative_to(ROOT)}: defaults for protocol settings {sorted(defaulted)}"


def _read_names() -> set[str]:
    """The string literals of the fixtures, the claim tests and the harness (the declarations left out),
    and the fields of the settings classes built ``from_protocol``: the protocol keys something reads."""
    read = set()
    sources = [*(ROOT / "fixtures").glob("*.py"), *CLAIMS_DIR.glob("*.py"), *HARNESS_DIR.rglob("*.py")]
    for path in sources:
        if path in (HARNESS_DIR / "verdicts" / "declared.py", HARNESS_DIR / "verdicts" / "protocols.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                read.add(node.value)
            elif isinstance(node, ast.ClassDef) and any(isinstance(item, ast.FunctionDef) and item.name == "from_protocol"
                                                        for item in node.body):
                read |= {field.target.id for field in node.body if isinstance(field, ast.AnnAssign)}
    return read


def test_every_protocol_setting_is_read():
    """Every setting a protocol declares is read somewhere (``protocol["key"]`` in a fixture or claim test,
    or a settings class built ``from_protocol``): a declared number nothing reads restates one defined
    elsewhere."""
    unread = {key: sorted(claims) for key, claims in _protocol_numbers().items() if key not in _read_names()}
    assert not unread, f"declared but never read: {unread}"


def test_claims_of_one_family_share_one_protocol():
    """The statistics of one paper claim (``R1`` and ``R1.auroc``) are measured under one protocol: the
    fixture reads one of them and the others' declared numbers must be the same."""
    protocols = _protocols()
    for claim_id, protocol in protocols.items():
        for other_id, other in protocols.items():
            if declared(other_id).family == declared(claim_id).family:
                assert other == protocol, f"{claim_id} and {other_id} declare different protocols"


def test_r1_auroc_threshold_is_declared_in_its_protocol():
    """R1.auroc's statistic is the AUROC minus max(floor, the null's quantile), paired (the floor and the
    quantile are its protocol's, and its statistic's text names them); its rule is "> 0"."""
    claim = declared("R1.auroc")
    protocol = claim.protocol
    assert not claim.rule.data_dependent and (claim.rule.threshold, claim.rule.passes_when, claim.rule.strict) == (
        0.0, "above", True)
    assert protocol["auroc_floor"] == 0.8 and protocol["null_quantile"] == 0.975 and protocol["null_directions"] >= 50
    assert (f"larger of {protocol['auroc_floor']:g} and the {protocol['null_quantile']:.1%} quantile of the AUROCs of "
            f"{protocol['null_directions']} seeded random directions") in claim.statistic
