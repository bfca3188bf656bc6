"""The policy file and `evaluate`: a table for each rule, audit mode, reviews, what users are
shown, and start-up validation that names the bad key. deploy/policy.example.toml must load and
show every key the loader knows."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from proxy.errors import ConfigError
from proxy.policy import (
    CUSTOM_CODE_RULE,
    DEFAULT,
    DEFAULT_REASONS,
    FAMILIES,
    POLICY_ENV,
    Decision,
    FormatAction,
    Mode,
    ModelCard,
    Policy,
    Reason,
    Review,
    Subject,
    Verdict,
    decide,
    evaluate,
    family_of,
    known_keys,
    load_policy,
    refused_before_fetch,
    summarize,
    uses_card,
)
from proxy.scan.report import Finding, Format, ScanReport, Severity

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "policy.example.toml"

REPO = "acme/sentiment-model"
COMMIT = "4f2a9c81d0b3e6f7a8c9d0e1f2a3b4c5d6e7f809"
OTHER_COMMIT = "9b1e0d7c6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d"
NOW = 1_750_000_000.0
DAY = 86400.0
SAFE = ScanReport(Format.SAFETENSORS, "test")


def finding(rule: str, severity: Severity, location: str | None = None) -> Finding:
    return Finding(rule, severity, f"{rule} seen", location)


def report(fmt: Format = Format.SAFETENSORS, *findings: Finding) -> ScanReport:
    return ScanReport(fmt, "test", tuple(findings))


def subject(scan: ScanReport = SAFE, **facts: Any) -> Subject:
    """`contents=` sets what the scan found inside the file (ScanReport.contents)."""
    if "contents" in facts:
        scan = dataclasses.replace(scan, contents=facts.pop("contents"))
    values: dict[str, Any] = {
        "repo_type": "model",
        "repo_id": REPO,
        "commit": COMMIT,
        "path": "model.safetensors",
        "size_bytes": 1000,
        "report": scan,
        "now": NOW,
    }
    values.update(facts)
    return Subject(**values)


def policy(data: Mapping[str, Any] | None = None) -> Policy:
    return Policy.from_mapping(data or {}, source="test")


def decision(data: Mapping[str, Any] | None, scan: ScanReport = SAFE, **facts: Any) -> Decision:
    return evaluate(policy(data), subject(scan, **facts))


def rules(d: Decision) -> list[tuple[str, Verdict]]:
    return [(r.rule, r.verdict) for r in d.reasons]


# --- publishers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, repo_id, expected",
    [
        ({"deny": ["evil/*"]}, "evil/backdoor", Verdict.BLOCK),
        ({"deny": ["evil/*"]}, "evilcorp/model", Verdict.ALLOW),  # the org must be "evil"
        ({"deny": ["evil/*"]}, "Evil/backdoor", Verdict.ALLOW),  # repo ids are case-sensitive
        ({"deny": ["evil*"]}, "evil/backdoor", Verdict.BLOCK),  # "*" matches "/" too
        ({"deny": ["evil*"]}, "evilcorp/model", Verdict.BLOCK),
        ({"deny": ["*/*-uncensored"]}, "someone/llama-uncensored", Verdict.BLOCK),
        ({"deny": ["acme/model-?"]}, "acme/model-2", Verdict.BLOCK),
        ({"deny": ["acme/model-?"]}, "acme/model-10", Verdict.ALLOW),
        ({"deny": ["acme/exact"]}, "acme/exact", Verdict.BLOCK),
        ({"deny": ["acme/exact"]}, "acme/exact-not", Verdict.ALLOW),
        # deny wins over allow
        ({"deny": ["acme/bad"], "allow": ["acme/*"]}, "acme/bad", Verdict.BLOCK),
        (
            {"deny": ["acme/bad"], "allow": ["acme/*"], "quarantine_unknown": True},
            "acme/bad",
            Verdict.BLOCK,
        ),
        # the allow list matters only with quarantine_unknown
        ({"allow": ["good/*"]}, "stranger/model", Verdict.ALLOW),
        ({"allow": ["good/*"], "quarantine_unknown": True}, "good/model", Verdict.ALLOW),
        ({"allow": ["good/*"], "quarantine_unknown": True}, "stranger/model", Verdict.QUARANTINE),
        ({"allow": ["good/*"], "quarantine_unknown": True}, "Good/model", Verdict.QUARANTINE),
        ({"allow": ["a/*", "b/one"], "quarantine_unknown": True}, "b/one", Verdict.ALLOW),
        ({"allow": ["a/*", "b/one"], "quarantine_unknown": True}, "b/two", Verdict.QUARANTINE),
        ({"quarantine_unknown": True}, "anyone/model", Verdict.QUARANTINE),  # empty allow list
    ],
)
def test_publishers(section: dict[str, Any], repo_id: str, expected: Verdict) -> None:
    d = decision({"publishers": section}, repo_id=repo_id)
    assert d.verdict is expected
    if expected is Verdict.ALLOW:
        assert d.reasons == ()
    else:
        (reason,) = d.reasons
        assert reason.rule == "publishers"
        assert reason.text == DEFAULT_REASONS["publishers"]
        assert repo_id in reason.detail


def test_publishers_detail_names_the_glob() -> None:
    d = decision({"publishers": {"deny": ["other/*", "evil/*"]}}, repo_id="evil/x")
    assert d.reasons[0].detail == "evil/x matches deny 'evil/*'"
    d = decision({"publishers": {"quarantine_unknown": True}}, repo_id="evil/x")
    assert d.reasons[0].detail == "evil/x is not on the allow list"


# --- formats ---------------------------------------------------------------------------------

FAMILY_MEMBERS = [(family, fmt) for family, members in FAMILIES.items() for fmt in sorted(members)]


@pytest.mark.parametrize("family, fmt", FAMILY_MEMBERS)
def test_every_format_belongs_to_its_family(family: str, fmt: str) -> None:
    assert family_of(fmt) == family


def test_every_sniffed_format_has_a_family_and_unknown_ones_are_other() -> None:
    named = {fmt for members in FAMILIES.values() for fmt in members}
    assert {f.value for f in Format} <= named
    assert family_of("some-format-from-the-future") == "other"


@pytest.mark.parametrize("family, fmt", FAMILY_MEMBERS)
def test_format_block_per_family(family: str, fmt: str) -> None:
    blocked = {"formats": {family: "block"}}
    d = decision(blocked, contents=(fmt,))
    assert d.verdict is Verdict.BLOCK
    assert d.reasons == (
        Reason("formats", Verdict.BLOCK, DEFAULT_REASONS["formats"], f"{family} files are blocked"),
    )
    # every other family is untouched
    other = "safetensors" if family != "safetensors" else "gguf"
    d = decision({"formats": {other: "block"}}, contents=(fmt,))
    assert d.verdict is Verdict.ALLOW


@pytest.mark.parametrize(
    "actions, expected",
    [
        ({}, Verdict.ALLOW),
        ({"archive": "allow", "pickle": "allow"}, Verdict.ALLOW),
        ({"archive": "allow", "pickle": "block"}, Verdict.BLOCK),  # the pickle inside counts
        ({"archive": "block", "pickle": "allow"}, Verdict.BLOCK),
        ({"archive": "allow", "pickle": "convert"}, Verdict.BLOCK),
        ({"safetensors": "block"}, Verdict.ALLOW),
    ],
)
def test_torch_zip_is_both_archive_and_pickle(actions: dict[str, str], expected: Verdict) -> None:
    """A PyTorch zip checkpoint: a zip whose data.pkl is a pickle."""
    torch_zip = report(Format.ZIP)
    d = decision({"formats": actions}, torch_zip, contents=("zip", "pickle"))
    assert d.verdict is expected


def test_contents_of_a_zip_with_a_pickle_each_give_a_reason() -> None:
    d = decision(
        {"formats": {"archive": "block", "pickle": "block"}},
        report(Format.ZIP),
        contents=("zip", "pickle", "zip"),
    )
    assert [r.detail for r in d.reasons] == [
        "archive files are blocked",
        "pickle files are blocked",
    ]


def test_without_contents_the_reports_format_decides() -> None:
    blocked = {"formats": {"pickle": "block"}}
    assert decision(blocked, report(Format.PICKLE)).verdict is Verdict.BLOCK
    assert decision(blocked, report(Format.ZIP)).verdict is Verdict.ALLOW
    # contents, when known, replace the top-level reading
    assert decision(blocked, report(Format.ZIP), contents=("zip", "pickle")).verdict is (
        Verdict.BLOCK
    )


@pytest.mark.parametrize(
    "findings, expected, detail",
    [
        ((), Verdict.ALLOW, None),
        ((finding("pickle-embedded", Severity.INFO),), Verdict.ALLOW, None),
        (
            (finding("odd-thing", Severity.LOW),),
            Verdict.QUARANTINE,
            "pickle files are allowed only without findings; found odd-thing",
        ),
        (
            (
                finding("b-rule", Severity.LOW),
                finding("a-rule", Severity.LOW),
                finding("b-rule", Severity.LOW),
                finding("info-rule", Severity.INFO),
            ),
            Verdict.QUARANTINE,
            "pickle files are allowed only without findings; found a-rule, b-rule",
        ),
    ],
)
def test_allow_if_clean(
    findings: tuple[Finding, ...], expected: Verdict, detail: str | None
) -> None:
    d = decision({"formats": {"pickle": "allow-if-clean"}}, report(Format.PICKLE, *findings))
    assert d.verdict is expected
    if detail is None:
        assert d.reasons == ()
    else:
        assert d.reasons == (
            Reason("formats", Verdict.QUARANTINE, DEFAULT_REASONS["formats"], detail),
        )


def test_allow_if_clean_with_a_blocking_finding_blocks() -> None:
    scan = report(Format.PICKLE, finding("pickle-dangerous-call", Severity.CRITICAL))
    d = decision({"formats": {"pickle": "allow-if-clean"}}, scan)
    assert d.verdict is Verdict.BLOCK
    assert rules(d) == [("formats", Verdict.QUARANTINE), ("findings", Verdict.BLOCK)]


def test_allow_if_clean_applies_to_the_family_only() -> None:
    scan = report(Format.SAFETENSORS, finding("odd-thing", Severity.LOW))
    assert decision({"formats": {"pickle": "allow-if-clean"}}, scan).verdict is Verdict.ALLOW


def test_allow_lets_findings_decide() -> None:
    clean_low = report(Format.PICKLE, finding("odd-thing", Severity.LOW))
    assert decision({"formats": {"pickle": "allow"}}, clean_low).verdict is Verdict.ALLOW
    bad = report(Format.PICKLE, finding("pickle-dangerous-call", Severity.HIGH))
    assert decision({"formats": {"pickle": "allow"}}, bad).verdict is Verdict.BLOCK


def test_convert_behaves_as_block_and_says_so() -> None:
    d = decision({"formats": {"pickle": "convert"}}, report(Format.PICKLE))
    assert d.verdict is Verdict.BLOCK
    (reason,) = d.reasons
    assert reason.rule == "formats"
    assert "converted to safetensors" in reason.detail
    assert "cannot do yet" in reason.detail
    assert "blocked" in reason.detail
    assert "converted to safetensors" in d.summary()


def test_format_action_defaults_to_allow() -> None:
    p = policy({"formats": {"pickle": "block"}})
    assert p.formats.action("pickle") is FormatAction.BLOCK
    assert p.formats.action("gguf") is FormatAction.ALLOW
    assert p.formats.action("no-such-family") is FormatAction.ALLOW


# --- findings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, severity, expected",
    [
        ({}, Severity.INFO, Verdict.ALLOW),
        ({}, Severity.LOW, Verdict.ALLOW),
        ({}, Severity.MEDIUM, Verdict.BLOCK),  # the default: block_at = "medium"
        ({}, Severity.HIGH, Verdict.BLOCK),
        ({}, Severity.CRITICAL, Verdict.BLOCK),
        ({"block_at": "high"}, Severity.MEDIUM, Verdict.ALLOW),
        ({"block_at": "high"}, Severity.HIGH, Verdict.BLOCK),
        ({"block_at": "critical"}, Severity.HIGH, Verdict.ALLOW),
        ({"block_at": "critical"}, Severity.CRITICAL, Verdict.BLOCK),
        ({"block_at": "low"}, Severity.LOW, Verdict.BLOCK),
        ({"block_at": "info"}, Severity.INFO, Verdict.BLOCK),
        ({"block_at": "HIGH"}, Severity.MEDIUM, Verdict.ALLOW),  # names are case-insensitive
    ],
)
def test_findings_block_at(section: dict[str, Any], severity: Severity, expected: Verdict) -> None:
    d = decision({"findings": section}, report(Format.PICKLE, finding("some-rule", severity)))
    assert d.verdict is expected


@pytest.mark.parametrize(
    "section, found, expected",
    [
        # allow_rules: never a reason to block, whatever the severity
        ({"allow_rules": ["known-benign"]}, [("known-benign", Severity.CRITICAL)], []),
        (
            {"allow_rules": ["known-benign"]},
            [("known-benign", Severity.HIGH), ("other", Severity.HIGH)],
            ["other"],
        ),
        # deny_rules: always a reason to block, whatever the severity
        (
            {"deny_rules": ["pickle-embedded"]},
            [("pickle-embedded", Severity.INFO)],
            ["pickle-embedded"],
        ),
        ({"deny_rules": ["pickle-embedded"]}, [("other", Severity.INFO)], []),
        (
            {"deny_rules": ["odd"], "block_at": "critical"},
            [("odd", Severity.LOW), ("bad", Severity.HIGH)],
            ["odd"],
        ),
        # one reason per finding
        ({}, [("a", Severity.HIGH), ("b", Severity.MEDIUM), ("c", Severity.LOW)], ["a", "b"]),
    ],
)
def test_findings_allow_and_deny_rules(
    section: dict[str, Any], found: list[tuple[str, Severity]], expected: list[str]
) -> None:
    scan = report(Format.PICKLE, *(finding(rule, sev) for rule, sev in found))
    d = decision({"findings": section}, scan)
    blocking = [r for r in d.reasons if r.rule == "findings"]
    assert [r.detail.split(" ")[0] for r in blocking] == expected
    assert all(r.verdict is Verdict.BLOCK for r in blocking)
    assert d.verdict is (Verdict.BLOCK if expected else Verdict.ALLOW)


def test_findings_detail_is_the_finding() -> None:
    f = finding("pickle-dangerous-call", Severity.CRITICAL, "archive/data.pkl: offset 12")
    d = decision(None, report(Format.ZIP, f))
    (reason,) = d.reasons
    assert reason == Reason("findings", Verdict.BLOCK, DEFAULT_REASONS["findings"], f.describe())
    assert "archive/data.pkl: offset 12" in reason.detail
    assert "critical" in reason.detail


# --- custom code -----------------------------------------------------------------------------

AUTO_MAP = finding(CUSTOM_CODE_RULE, Severity.HIGH, "config.json")
CONFIG_WITH_CODE = report(Format.JSON, AUTO_MAP)


def test_custom_code_is_blocked_by_default() -> None:
    for p in (DEFAULT, policy()):
        d = evaluate(p, subject(CONFIG_WITH_CODE, path="config.json"))
        assert d.verdict is Verdict.BLOCK
        # decided by the custom_code rule alone, not twice by findings
        assert d.reasons == (
            Reason(
                "custom_code", Verdict.BLOCK, DEFAULT_REASONS["custom_code"], AUTO_MAP.describe()
            ),
        )


def test_custom_code_is_not_governed_by_the_findings_rule() -> None:
    lenient = {"findings": {"allow_rules": [CUSTOM_CODE_RULE], "block_at": "critical"}}
    assert decision(lenient, CONFIG_WITH_CODE).verdict is Verdict.BLOCK
    assert rules(decision(lenient, CONFIG_WITH_CODE)) == [("custom_code", Verdict.BLOCK)]


@pytest.mark.parametrize(
    "allowed, repo_id, commit, expected",
    [
        ([f"{REPO}@{COMMIT}"], REPO, COMMIT, Verdict.ALLOW),
        ([f"{REPO}@{COMMIT}"], REPO, OTHER_COMMIT, Verdict.BLOCK),  # only that commit
        ([f"{REPO}@{COMMIT}"], "acme/other-model", COMMIT, Verdict.BLOCK),  # only that repo
        ([f"{REPO}@{COMMIT.upper()}"], REPO, COMMIT, Verdict.ALLOW),  # shas are case-insensitive
        ([f"{REPO}@{COMMIT}"], REPO, COMMIT.upper(), Verdict.ALLOW),
        ([f"acme/x@{OTHER_COMMIT}", f"{REPO}@{COMMIT}"], REPO, COMMIT, Verdict.ALLOW),
    ],
)
def test_custom_code_allowed_per_repo_at_commit(
    allowed: list[str], repo_id: str, commit: str, expected: Verdict
) -> None:
    d = decision(
        {"custom_code": {"allow": allowed}}, CONFIG_WITH_CODE, repo_id=repo_id, commit=commit
    )
    assert d.verdict is expected


def test_allowed_custom_code_still_gets_the_other_findings_checked() -> None:
    scan = report(Format.PYTHON_SOURCE, AUTO_MAP, finding("something-else", Severity.HIGH))
    d = decision({"custom_code": {"allow": [f"{REPO}@{COMMIT}"]}}, scan)
    assert rules(d) == [("findings", Verdict.BLOCK)]


def test_files_without_custom_code_are_not_concerned() -> None:
    assert decision(None, report(Format.JSON)).verdict is Verdict.ALLOW


# --- documentation ---------------------------------------------------------------------------

STRICT_DOCS = {"require_model_card": True, "require_license": True, "licenses": ["apache-2.0"]}
NO_CARD = ModelCard(present=False)
CARD_NO_LICENSE = ModelCard(present=True)


@pytest.mark.parametrize(
    "section, card, path, expected, detail",
    [
        # missing card
        (
            {"require_model_card": True},
            NO_CARD,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the repo has no README.md",
        ),
        (
            {"require_license": True},
            NO_CARD,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the repo has no README.md",
        ),
        (
            {"licenses": ["mit"]},
            NO_CARD,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the repo has no README.md",
        ),
        ({}, NO_CARD, "model.safetensors", Verdict.ALLOW, None),
        # a card without a license
        ({"require_model_card": True}, CARD_NO_LICENSE, "model.safetensors", Verdict.ALLOW, None),
        (
            {"require_license": True},
            CARD_NO_LICENSE,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the model card names no license",
        ),
        (
            {"licenses": ["mit"]},
            CARD_NO_LICENSE,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the model card names no license",
        ),
        # the license list
        (STRICT_DOCS, ModelCard(True, ("apache-2.0",)), "model.safetensors", Verdict.ALLOW, None),
        (STRICT_DOCS, ModelCard(True, ("Apache-2.0",)), "model.safetensors", Verdict.ALLOW, None),
        (
            {"licenses": ["Apache-2.0"]},
            ModelCard(True, ("apache-2.0",)),
            "model.safetensors",
            Verdict.ALLOW,
            None,
        ),
        (
            STRICT_DOCS,
            ModelCard(True, ("llama3.1",)),
            "model.safetensors",
            Verdict.BLOCK,
            "license llama3.1 is not on the allowed list",
        ),
        (
            STRICT_DOCS,
            ModelCard(True, ("apache-2.0", "cc-by-nc-4.0")),
            "model.safetensors",
            Verdict.BLOCK,
            "license cc-by-nc-4.0 is not on the allowed list",
        ),
        (
            {"require_license": True},
            ModelCard(True, ("other",)),
            "model.safetensors",
            Verdict.ALLOW,
            None,
        ),  # no list: any license
        # the card files themselves are exempt
        (STRICT_DOCS, NO_CARD, "README.md", Verdict.ALLOW, None),
        (STRICT_DOCS, NO_CARD, ".gitattributes", Verdict.ALLOW, None),
        (STRICT_DOCS, ModelCard(True, ("gpl-3.0",)), "README.md", Verdict.ALLOW, None),
        (STRICT_DOCS, NO_CARD, "docs/README.md", Verdict.QUARANTINE, "the repo has no README.md"),
        # card None: not looked up, the rule is off
        (STRICT_DOCS, None, "model.safetensors", Verdict.ALLOW, None),
    ],
)
def test_documentation(
    section: dict[str, Any],
    card: ModelCard | None,
    path: str,
    expected: Verdict,
    detail: str | None,
) -> None:
    d = decision({"documentation": section}, card=card, path=path)
    assert d.verdict is expected
    if detail is None:
        assert d.reasons == ()
    else:
        assert d.reasons == (
            Reason("documentation", expected, DEFAULT_REASONS["documentation"], detail),
        )


def test_uses_card_only_when_the_rule_asks_for_something() -> None:
    assert not uses_card(DEFAULT)
    assert not uses_card(policy({"documentation": {"reason": "docs please"}}))
    for key, value in [
        ("require_model_card", True),
        ("require_license", True),
        ("licenses", ["mit"]),
    ]:
        assert uses_card(policy({"documentation": {key: value}}))


# --- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, size, expected",
    [
        ({}, 10**13, Verdict.ALLOW),  # no limit
        ({"max_file_bytes": 1000}, 999, Verdict.ALLOW),
        ({"max_file_bytes": 1000}, 1000, Verdict.ALLOW),
        ({"max_file_bytes": 1000}, 1001, Verdict.BLOCK),
    ],
)
def test_size(section: dict[str, Any], size: int, expected: Verdict) -> None:
    d = decision({"size": section}, size_bytes=size)
    assert d.verdict is expected
    if expected is Verdict.BLOCK:
        assert d.reasons == (
            Reason("size", Verdict.BLOCK, DEFAULT_REASONS["size"], "1001 bytes > 1000 bytes"),
        )


# --- age -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, commit_ts, path, expected, detail",
    [
        ({}, NOW, "model.safetensors", Verdict.ALLOW, None),  # off by default
        ({"min_days": 0}, None, "model.safetensors", Verdict.ALLOW, None),
        (
            {"min_days": 7},
            None,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the commit's date could not be learned",
        ),
        (
            {"min_days": 7},
            NOW - DAY,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the commit is 1.0 days old; the policy asks for 7",
        ),
        (
            {"min_days": 7},
            NOW - 6.5 * DAY,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the commit is 6.5 days old; the policy asks for 7",
        ),
        ({"min_days": 7}, NOW - 7 * DAY, "model.safetensors", Verdict.ALLOW, None),
        ({"min_days": 7}, NOW - 400 * DAY, "model.safetensors", Verdict.ALLOW, None),
        (
            {"min_days": 0.5},
            NOW - 0.3 * DAY,
            "model.safetensors",
            Verdict.QUARANTINE,
            "the commit is 0.3 days old; the policy asks for 0.5",
        ),
        ({"min_days": 7}, NOW - DAY, "README.md", Verdict.ALLOW, None),  # card files exempt
        ({"min_days": 7}, None, ".gitattributes", Verdict.ALLOW, None),
    ],
)
def test_age(
    section: dict[str, Any],
    commit_ts: float | None,
    path: str,
    expected: Verdict,
    detail: str | None,
) -> None:
    d = decision({"age": section}, commit_ts=commit_ts, path=path)
    assert d.verdict is expected
    if detail is None:
        assert d.reasons == ()
    else:
        assert d.reasons == (Reason("age", expected, DEFAULT_REASONS["age"], detail),)


# --- pinning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "repos, repo_id, commit, expected",
    [
        ({}, REPO, COMMIT, Verdict.ALLOW),
        ({REPO: [COMMIT]}, REPO, COMMIT, Verdict.ALLOW),
        ({REPO: [COMMIT]}, REPO, OTHER_COMMIT, Verdict.QUARANTINE),
        ({REPO: [COMMIT, OTHER_COMMIT]}, REPO, OTHER_COMMIT, Verdict.ALLOW),
        ({REPO: [COMMIT.upper()]}, REPO, COMMIT, Verdict.ALLOW),
        ({REPO: [COMMIT]}, REPO, COMMIT.upper(), Verdict.ALLOW),
        ({REPO: [COMMIT]}, "acme/unpinned", OTHER_COMMIT, Verdict.ALLOW),  # not listed
        ({REPO: []}, REPO, COMMIT, Verdict.QUARANTINE),  # no commit approved yet
        ({"acme/*": [COMMIT]}, REPO, OTHER_COMMIT, Verdict.ALLOW),  # exact ids, not globs
    ],
)
def test_pinning(repos: dict[str, list[str]], repo_id: str, commit: str, expected: Verdict) -> None:
    d = decision({"pinning": {"repos": repos}}, repo_id=repo_id, commit=commit)
    assert d.verdict is expected
    if expected is Verdict.QUARANTINE:
        assert d.reasons == (
            Reason(
                "pinning",
                Verdict.QUARANTINE,
                DEFAULT_REASONS["pinning"],
                f"commit {commit} is not an approved pin",
            ),
        )


# --- mode: enforce and audit -----------------------------------------------------------------

DANGEROUS = report(Format.PICKLE, finding("pickle-dangerous-call", Severity.CRITICAL))


def test_audit_mode_serves_and_records_what_it_would_have_done() -> None:
    d = decision({"mode": "audit"}, DANGEROUS)
    assert d.verdict is Verdict.ALLOW
    assert d.audit_only
    (reason,) = d.reasons
    assert reason.rule == "findings"
    assert reason.verdict is Verdict.BLOCK  # what it would have done
    assert not reason.enforced
    assert d.enforced_reasons == ()
    assert "pickle-dangerous-call" in d.summary()  # the log shows what would have blocked


def test_audit_mode_applies_to_every_rule() -> None:
    data = {
        "mode": "audit",
        "publishers": {"deny": [REPO]},
        "formats": {"pickle": "block"},
        "size": {"max_file_bytes": 10},
        "age": {"min_days": 7},
        "pinning": {"repos": {REPO: [OTHER_COMMIT]}},
        "documentation": {"require_model_card": True},
    }
    d = decision(data, DANGEROUS, commit_ts=NOW, card=NO_CARD)
    assert d.verdict is Verdict.ALLOW
    assert d.audit_only
    assert {r.rule for r in d.reasons} == {
        "publishers",
        "formats",
        "findings",
        "documentation",
        "size",
        "age",
        "pinning",
    }
    assert not any(r.enforced for r in d.reasons)
    code = decision({"mode": "audit"}, CONFIG_WITH_CODE)
    assert code.verdict is Verdict.ALLOW and code.audit_only


def test_per_rule_audit_while_the_rest_is_enforced() -> None:
    data = {"size": {"max_file_bytes": 10, "mode": "audit"}}
    d = decision(data, size_bytes=11)
    assert d.verdict is Verdict.ALLOW
    assert d.audit_only
    assert d.reasons == (
        Reason("size", Verdict.BLOCK, DEFAULT_REASONS["size"], "11 bytes > 10 bytes", False),
    )
    # an enforced rule still refuses, and the audited one is recorded beside it
    d = decision(data, DANGEROUS, size_bytes=11)
    assert d.verdict is Verdict.BLOCK
    assert not d.audit_only
    assert [(r.rule, r.enforced) for r in d.reasons] == [("findings", True), ("size", False)]
    assert [r.rule for r in d.enforced_reasons] == ["findings"]
    assert "bytes" not in d.summary()  # users are shown what decided


def test_per_rule_enforce_under_a_top_level_audit() -> None:
    d = decision({"mode": "audit", "findings": {"mode": "enforce"}}, DANGEROUS)
    assert d.verdict is Verdict.BLOCK
    assert not d.audit_only
    d = decision({"mode": "audit", "findings": {"mode": "enforce"}}, size_bytes=1)
    assert d.verdict is Verdict.ALLOW and not d.audit_only


def test_audit_quarantine() -> None:
    d = decision({"age": {"min_days": 7, "mode": "audit"}}, commit_ts=NOW - DAY)
    assert d.verdict is Verdict.ALLOW
    assert d.audit_only
    assert d.reasons[0].verdict is Verdict.QUARANTINE
    assert not d.reasons[0].enforced


def test_modes_are_read_per_section() -> None:
    p = policy({"mode": "audit", "pinning": {"mode": "enforce"}})
    assert p.mode is Mode.AUDIT
    assert p.pinning.mode is Mode.ENFORCE
    assert p.publishers.mode is Mode.AUDIT
    assert p.custom_code.mode is Mode.AUDIT
    assert DEFAULT.mode is Mode.ENFORCE
    assert all(getattr(DEFAULT, section).mode is Mode.ENFORCE for section in DEFAULT_REASONS)


def test_the_strictest_enforced_verdict_wins() -> None:
    data = {"age": {"min_days": 7}, "size": {"max_file_bytes": 10}}
    d = decision(data, commit_ts=NOW - DAY, size_bytes=11)
    assert d.verdict is Verdict.BLOCK
    d = decision(data, commit_ts=NOW - DAY, size_bytes=1)
    assert d.verdict is Verdict.QUARANTINE
    d = decision(
        {"age": {"min_days": 7}, "size": {"max_file_bytes": 10, "mode": "audit"}},
        commit_ts=NOW - DAY,
        size_bytes=11,
    )
    assert d.verdict is Verdict.QUARANTINE
    assert not d.audit_only  # refused, so not "allowed in audit"


# --- reviews ---------------------------------------------------------------------------------

APPROVE = Review("approve", "alice@acme.example", "false positive: the global is a tokenizer")
DENY = Review("deny", "bob@acme.example", "unvetted publisher")


def test_approval_overrides_a_block() -> None:
    d = decision({"size": {"max_file_bytes": 10}}, DANGEROUS, size_bytes=11, review=APPROVE)
    assert d.verdict is Verdict.ALLOW
    assert not d.audit_only
    # the refusals stay on record beside the waiver
    assert rules(d) == [
        ("findings", Verdict.BLOCK),
        ("size", Verdict.BLOCK),
        ("review", Verdict.ALLOW),
    ]
    assert d.reasons[-1] == Reason(
        "review", Verdict.ALLOW, "approved by alice@acme.example", APPROVE.reason
    )
    assert d.summary() == f"approved by alice@acme.example ({APPROVE.reason})"


def test_approval_overrides_a_quarantine() -> None:
    d = decision({"pinning": {"repos": {REPO: [OTHER_COMMIT]}}}, review=APPROVE)
    assert d.verdict is Verdict.ALLOW


def test_denial_overrides_an_allow() -> None:
    d = decision(None, review=DENY)
    assert d.verdict is Verdict.BLOCK
    assert d.reasons == (
        Reason("review", Verdict.BLOCK, "denied by bob@acme.example", "unvetted publisher"),
    )
    assert d.summary() == "denied by bob@acme.example (unvetted publisher)"


def test_denial_is_what_users_are_told_even_when_rules_refuse_too() -> None:
    d = decision(None, DANGEROUS, review=DENY)
    assert d.verdict is Verdict.BLOCK
    assert d.summary() == "denied by bob@acme.example (unvetted publisher)"
    assert [r.rule for r in d.enforced_reasons] == ["findings", "review"]


def test_denial_overrides_audit_mode() -> None:
    d = decision({"mode": "audit"}, DANGEROUS, review=DENY)
    assert d.verdict is Verdict.BLOCK
    assert not d.audit_only


# --- what users are shown ---------------------------------------------------------------------


def test_summarize_shows_the_deciding_reasons_strictest_first() -> None:
    data = {
        "age": {"min_days": 7, "reason": "too new"},
        "size": {"max_file_bytes": 10, "reason": "too big"},
        "pinning": {"repos": {REPO: [OTHER_COMMIT]}, "mode": "audit", "reason": "not pinned"},
    }
    d = decision(data, commit_ts=NOW - DAY, size_bytes=11)
    assert d.summary() == (
        "too big (11 bytes > 10 bytes); too new (the commit is 1.0 days old; the policy asks for 7)"
    )
    assert summarize(d.reasons) == d.summary()
    assert "not pinned" not in d.summary()  # audited, so it did not decide


def test_summarize_without_reasons() -> None:
    assert summarize([]) == "allowed"
    assert decision(None).summary() == "allowed"


def test_reason_text_is_the_policys() -> None:
    d = decision({"size": {"max_file_bytes": 1, "reason": "  ask #ml-platform  "}})
    assert d.reasons[0].text == "ask #ml-platform"
    assert d.summary() == "ask #ml-platform (1000 bytes > 1 bytes)"
    assert Reason("size", Verdict.BLOCK, "too big", "").describe() == "too big"


def test_reasons_round_trip_through_json() -> None:
    d = decision({"mode": "audit", "size": {"max_file_bytes": 1}}, DANGEROUS, review=DENY)
    assert tuple(Reason.from_json(r.to_json()) for r in d.reasons) == d.reasons
    legacy = Reason.from_json("blocked by an old policy")
    assert legacy == Reason("findings", Verdict.BLOCK, "blocked by an old policy", "")


def test_decisions_carry_the_policy_version() -> None:
    p = policy({"size": {"max_file_bytes": 5}})
    assert evaluate(p, subject()).policy_version == p.version


def test_decide_applies_a_policy_to_a_file_on_its_own() -> None:
    assert decide(DANGEROUS).verdict is Verdict.BLOCK
    assert decide(SAFE).verdict is Verdict.ALLOW
    assert decide(DANGEROUS, policy({"mode": "audit"})).audit_only
    assert load_policy(None) is DEFAULT


# --- loading and validation ------------------------------------------------------------------


def load_text(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return Policy.load(path)


@pytest.mark.parametrize(
    "text, message",
    [
        # unknown keys, named with their section
        ('moed = "audit"', "moed is not a known policy key"),
        ("[formats]\npikle = 'block'", "formats.pikle is not a known policy key"),
        ("[findings]\nblock_above = 'high'", "findings.block_above is not a known policy key"),
        ("[publisher]\ndeny = ['x/*']", "publisher is not a known policy key"),
        ("[size]\nmax_bytes = 10", "size.max_bytes is not a known policy key"),
        ("[pinning]\n[pinning.repo]\n", "pinning.repo is not a known policy key"),
        # wrong types
        ("publishers = 'evil/*'", "publishers must be a table"),
        ("[[publishers]]\ndeny = ['x/*']", "publishers must be a table"),
        ("[publishers]\ndeny = 'evil/*'", "publishers.deny must be a list of non-empty strings"),
        ("[publishers]\nallow = ['ok/*', '']", "publishers.allow must be a list of non-empty"),
        ("[publishers]\nallow = [1]", "publishers.allow must be a list of non-empty strings"),
        ("[publishers]\nquarantine_unknown = 'yes'", "publishers.quarantine_unknown must be true"),
        ("[findings]\nallow_rules = 'x'", "findings.allow_rules must be a list"),
        ("[documentation]\nlicenses = 'mit'", "documentation.licenses must be a list"),
        ("[documentation]\nrequire_license = 1", "documentation.require_license must be true"),
        ("[size]\nmax_file_bytes = 0", "size.max_file_bytes must be a positive integer"),
        ("[size]\nmax_file_bytes = -5", "size.max_file_bytes must be a positive integer"),
        ("[size]\nmax_file_bytes = 1.5e9", "size.max_file_bytes must be a positive integer"),
        ("[size]\nmax_file_bytes = '50GB'", "size.max_file_bytes must be a positive integer"),
        ("[size]\nmax_file_bytes = true", "size.max_file_bytes must be a positive integer"),
        ("[age]\nmin_days = -1", "age.min_days must be a number, zero or more"),
        ("[age]\nmin_days = '7'", "age.min_days must be a number, zero or more"),
        ("[age]\nmin_days = true", "age.min_days must be a number, zero or more"),
        ("[age]\nmin_days = nan", "age.min_days must be a number, zero or more"),
        ("[age]\nmin_days = inf", "age.min_days must be a number, zero or more"),
        ("[size]\nreason = ''", "size.reason must be a non-empty string"),
        ("[size]\nreason = '   '", "size.reason must be a non-empty string"),
        ("[size]\nreason = 3", "size.reason must be a non-empty string"),
        # bad enum values list the choices
        ("mode = 'strict'", "mode must be one of 'enforce', 'audit', got 'strict'"),
        ("mode = 1", "mode must be one of 'enforce', 'audit', got 1"),
        (
            "[publishers]\nmode = 'off'",
            "publishers.mode must be one of 'enforce', 'audit', got 'off'",
        ),
        (
            "[formats]\npickle = 'quarantine'",
            "formats.pickle must be one of 'allow', 'allow-if-clean', 'convert', 'block', "
            "got 'quarantine'",
        ),
        ("[formats]\nmode = 'allow'", "formats.mode must be one of 'enforce', 'audit'"),
        # bad severities
        (
            "[findings]\nblock_at = 'severe'",
            "findings.block_at must be one of info, low, medium, high, critical, got 'severe'",
        ),
        ("[findings]\nblock_at = 2", "findings.block_at must be one of info, low, medium"),
        # bad pins
        (
            '[pinning.repos]\n"acme/m" = ["abc123"]',
            "pinning.repos.acme/m must be a list of 40-hex commit shas",
        ),
        (
            f'[pinning.repos]\n"acme/m" = "{COMMIT}"',
            "pinning.repos.acme/m must be a list of 40-hex commit shas",
        ),
        (
            f'[pinning.repos]\n"acme/m" = ["{COMMIT[:-1]}g"]',
            "pinning.repos.acme/m must be a list of 40-hex commit shas",
        ),
        (
            '[pinning.repos]\n"acme/m" = ["main"]',
            "pinning.repos.acme/m must be a list of 40-hex commit shas",
        ),
        ("[pinning]\nrepos = ['acme/m']", "pinning.repos must be a table"),
        (
            "[custom_code]\nallow = ['acme/m']",
            "custom_code.allow entries are 'org/repo@<commit sha>': 'acme/m'",
        ),
        ("[custom_code]\nallow = ['acme/m@main']", "custom_code.allow entries are"),
        (f"[custom_code]\nallow = ['@{COMMIT}']", "custom_code.allow entries are"),
        (f"[custom_code]\nallow = ['acme/m@{COMMIT}0']", "custom_code.allow entries are"),
    ],
)
def test_bad_policy_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_text(tmp_path, text)
    assert error.value.variable == POLICY_ENV
    assert message in str(error.value)


@pytest.mark.parametrize("section", sorted(DEFAULT_REASONS))
def test_every_section_rejects_unknown_keys(section: str) -> None:
    with pytest.raises(ConfigError, match=rf"{section}\.bogus is not a known policy key"):
        policy({section: {"bogus": 1}})


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.toml is not valid TOML"):
        load_text(tmp_path, "[formats\npickle = block")
    path = tmp_path / "policy.toml"
    path.write_bytes(b"mode = '\xff\xfe'")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Policy.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        Policy.load(tmp_path / "nowhere.toml")
    assert error.value.variable == POLICY_ENV
    assert "cannot read" in str(error.value)
    assert "nowhere.toml" in str(error.value)
    with pytest.raises(ConfigError, match="cannot read"):
        Policy.load(tmp_path)  # a directory


def test_a_policy_file_loads(tmp_path: Path) -> None:
    p = load_text(
        tmp_path,
        f"""
        mode = "enforce"
        [publishers]
        deny = ["evil/*"]
        [formats]
        pickle = "allow-if-clean"
        [findings]
        block_at = "high"
        deny_rules = ["pickle-embedded"]
        [custom_code]
        allow = ["acme/m@{COMMIT.upper()}"]
        [documentation]
        licenses = ["Apache-2.0", "MIT"]
        [size]
        max_file_bytes = 1_000_000
        [age]
        min_days = 2.5
        [pinning.repos]
        "acme/m" = ["{COMMIT.upper()}"]
        """,
    )
    assert p.source == str(tmp_path / "policy.toml")
    assert p.publishers.deny == ("evil/*",)
    assert p.formats.action("pickle") is FormatAction.ALLOW_IF_CLEAN
    assert p.findings.block_at is Severity.HIGH
    assert p.findings.deny_rules == frozenset({"pickle-embedded"})
    assert p.custom_code.allow == frozenset({f"acme/m@{COMMIT}"})
    assert p.documentation.licenses == frozenset({"apache-2.0", "mit"})
    assert p.size.max_file_bytes == 1_000_000
    assert p.age.min_days == 2.5
    assert p.pinning.repos == {"acme/m": frozenset({COMMIT})}
    assert all(getattr(p, s).reason == DEFAULT_REASONS[s] for s in DEFAULT_REASONS)


def test_the_default_policy() -> None:
    assert DEFAULT.source == "default"
    assert DEFAULT.findings.block_at is Severity.MEDIUM
    assert not DEFAULT.publishers.quarantine_unknown
    assert all(a is FormatAction.ALLOW for a in DEFAULT.formats.actions.values())
    assert DEFAULT.size.max_file_bytes is None
    assert DEFAULT.age.min_days == 0


# --- the policy version ----------------------------------------------------------------------

BASE = """
mode = "enforce"
[findings]
block_at = "high"
[size]
max_file_bytes = 1000
"""


def test_version_ignores_comments_layout_and_order(tmp_path: Path) -> None:
    base = load_text(tmp_path, BASE).version
    reworded = """
    # a comment that changes nothing
    mode = "enforce"   # the same

    [size]   # the limit, sections in another order
    max_file_bytes    = 1_000   # the same value, spelt otherwise

    [findings]
    block_at = 'high'  # other quotes
    """
    assert load_text(tmp_path, reworded).version == base
    assert policy(tomllib.loads(BASE)).version == base  # the source is not part of it


@pytest.mark.parametrize(
    "changed",
    [
        BASE.replace('"high"', '"medium"'),
        BASE.replace("1000", "1001"),
        BASE.replace('"enforce"', '"audit"'),
        BASE + "[formats]\npickle = 'block'\n",
        BASE + "[age]\nmin_days = 1\n",
    ],
)
def test_version_changes_with_the_meaning(tmp_path: Path, changed: str) -> None:
    assert load_text(tmp_path, changed).version != load_text(tmp_path, BASE).version


def test_an_empty_file_is_the_default_policy(tmp_path: Path) -> None:
    empty = load_text(tmp_path, "# nothing set\n")
    assert empty.version == DEFAULT.version
    assert empty == dataclasses.replace(DEFAULT, source=empty.source)


# --- deploy/policy.example.toml ---------------------------------------------------------------


def dotted_keys(table: Mapping[str, Any], known: frozenset[str], prefix: str = "") -> Iterator[str]:
    """Every key a file sets, dotted. Tables of data (pinning.repos: repo ids to commits) are one
    key: the walk goes into a table only where the loader knows keys below it."""
    for key, value in table.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict) and any(k.startswith(f"{path}.") for k in known):
            yield from dotted_keys(value, known, f"{path}.")


def test_known_keys_are_every_section_and_family() -> None:
    known = known_keys()
    assert "mode" in known
    for section in DEFAULT_REASONS:
        assert {section, f"{section}.reason", f"{section}.mode"} <= known
    assert {f"formats.{family}" for family in FAMILIES} <= known
    assert "pinning.repos" in known
    assert not any(k.startswith("pinning.repos.") for k in known)


def test_the_example_loads_and_sets_every_key() -> None:
    example = Policy.load(EXAMPLE)
    assert example.source == str(EXAMPLE)
    data = tomllib.loads(EXAMPLE.read_text())
    known = known_keys()
    assert set(dotted_keys(data, known)) == set(known)
    # every section says in its own words why it refuses
    assert all(getattr(example, s).reason != DEFAULT_REASONS[s] for s in DEFAULT_REASONS)


def test_the_example_is_a_careful_policy() -> None:
    example = Policy.load(EXAMPLE)
    assert example.mode is Mode.ENFORCE
    assert example.formats.action("pickle") is FormatAction.ALLOW_IF_CLEAN
    assert example.findings.block_at <= Severity.MEDIUM
    assert example.publishers.quarantine_unknown
    assert example.documentation.licenses
    # a PyTorch zip checkpoint from an approved publisher with a low finding goes to review
    torch_zip = report(Format.ZIP, finding("odd-thing", Severity.LOW, "archive/data.pkl"))
    trusted = subject(
        torch_zip,
        repo_id="microsoft/some-model",
        path="pytorch_model.bin",
        contents=("zip", "pickle"),
        card=ModelCard(True, ("mit",)),
        commit_ts=NOW - 30 * DAY,
    )
    assert evaluate(example, trusted).verdict is Verdict.QUARANTINE
    clean = subject(
        report(Format.ZIP),
        repo_id="microsoft/some-model",
        contents=("zip", "pickle"),
        card=ModelCard(True, ("mit",)),
        commit_ts=NOW - 30 * DAY,
    )
    assert evaluate(example, clean).verdict is Verdict.ALLOW
    # the nullifAI repos (threats.md section 2) are denied
    denied = subject(SAFE, repo_id="glockr1/ballr7", card=ModelCard(True, ("mit",)))
    assert evaluate(example, denied).verdict is Verdict.BLOCK
    # custom code runs only at the commits listed
    (allowed,) = [e for e in example.custom_code.allow if e.startswith("microsoft/")]
    repo_id, _, commit = allowed.partition("@")
    code = subject(CONFIG_WITH_CODE, repo_id=repo_id, commit=commit, card=ModelCard(True, ("mit",)))
    assert evaluate(example, code).verdict is Verdict.ALLOW
    moved = subject(
        CONFIG_WITH_CODE, repo_id=repo_id, commit=OTHER_COMMIT, card=ModelCard(True, ("mit",))
    )
    assert evaluate(example, moved).verdict is Verdict.BLOCK


@pytest.mark.parametrize(
    "data, repo_id, size, refused",
    [
        ({"publishers": {"deny": ["bad/*"]}}, "bad/m", 1, "bad/m matches deny 'bad/*'"),
        ({"publishers": {"deny": ["bad/*"]}}, "good/m", 1, None),
        ({"publishers": {"deny": ["bad/*"], "mode": "audit"}}, "bad/m", 1, None),
        ({"mode": "audit", "publishers": {"deny": ["bad/*"]}}, "bad/m", 1, None),
        ({"publishers": {"allow": ["a/*"], "quarantine_unknown": True}}, "b/m", 1, None),
        ({"size": {"max_file_bytes": 10}}, "a/m", 11, "11 bytes > 10 bytes"),
        ({"size": {"max_file_bytes": 10}}, "a/m", 10, None),
        ({"pinning": {"repos": {"a/m": ["a" * 40]}}}, "a/m", 1, None),  # review can allow it
    ],
)
def test_only_enforced_content_blind_blocks_skip_the_fetch(
    data: dict[str, Any], repo_id: str, size: int, refused: str | None
) -> None:
    reason = refused_before_fetch(Policy.from_mapping(data, source="t"), repo_id, "f.bin", size)
    assert (reason.detail if reason else None) == refused
