"""Policy: the organisation's rules, and the one function that turns what is known about a file
into a decision.

`Policy.load(path)` reads and validates a TOML policy file (deploy/policy.example.toml documents
every key); `DEFAULT` is the policy without a file. `evaluate(policy, subject)` is pure: the
pipeline gathers the facts (scan report, model card, commit date, reviews) and records what it
returns. Each rule yields reasons with their own verdict; the strictest enforced one wins, and a
rule in audit mode only records what it would have done.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from proxy.errors import ConfigError
from proxy.scan.report import Format, ScanReport, Severity

# The default for `[findings] block_at`: what the scan engine's severities are calibrated for.
BLOCK_AT = Severity.MEDIUM
POLICY_ENV = "AIRLOCK_POLICY"
CUSTOM_CODE_RULE = "custom-code"
# Files every repo may serve whatever the documentation rule says: the card itself.
CARD_FILES = frozenset({"README.md", ".gitattributes"})


class Verdict(StrEnum):
    ALLOW = "allow"
    QUARANTINE = "quarantine"  # held for a person to review
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.ALLOW: 0, Verdict.QUARANTINE: 1, Verdict.BLOCK: 2}


class Mode(StrEnum):
    ENFORCE = "enforce"
    AUDIT = "audit"  # log what would be blocked, serve it anyway


class FormatAction(StrEnum):
    ALLOW = "allow"  # the format is no reason to refuse; the findings rule still applies
    ALLOW_IF_CLEAN = "allow-if-clean"  # any finding above info sends the file to review
    CONVERT = "convert"  # pickle to safetensors; until conversion exists, behaves as block
    BLOCK = "block"


# Format families a policy names, and the formats (by content) in each. A file belongs to the
# family of everything found in it: a PyTorch zip checkpoint is both "archive" and "pickle".
FAMILIES: dict[str, frozenset[str]] = {
    "safetensors": frozenset({Format.SAFETENSORS}),
    "pickle": frozenset({Format.PICKLE}),
    "numpy": frozenset({Format.NUMPY}),
    "gguf": frozenset({Format.GGUF, "ggml"}),
    "onnx": frozenset({Format.ONNX}),
    "keras": frozenset({Format.HDF5}),
    "tensorflow": frozenset({Format.PROTOBUF_SAVEDMODEL, Format.TFLITE}),
    "archive": frozenset(
        {
            Format.ZIP,
            Format.TAR,
            Format.GZIP,
            Format.BZIP2,
            Format.XZ,
            Format.ZSTD,
            Format.ZLIB,
            Format.LZMA,
            Format.SEVEN_ZIP,
        }
    ),
    "code": frozenset({Format.PYTHON_SOURCE}),
    "config": frozenset({Format.JSON}),
    "text": frozenset({Format.TEXT}),
    "other": frozenset({Format.UNKNOWN}),
}


def family_of(fmt: str) -> str:
    for name, members in FAMILIES.items():
        if fmt in members:
            return name
    return "other"


DEFAULT_REASONS = {
    "publishers": "this publisher is not approved by your organisation",
    "formats": "this file format is not allowed by your organisation's policy",
    "findings": "the scan found content that could run code when the model is loaded",
    "custom_code": "the repo ships code that transformers runs with trust_remote_code",
    "documentation": "the repo's model card does not meet your organisation's requirements",
    "size": "the file is larger than your organisation allows",
    "age": "the repo's latest commit is too recent to be trusted yet",
    "pinning": "this repo may only be used at commits your security team approved",
}


@dataclass(frozen=True)
class Rule:
    reason: str
    mode: Mode


@dataclass(frozen=True)
class Publishers(Rule):
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    quarantine_unknown: bool = False


@dataclass(frozen=True)
class Formats(Rule):
    actions: Mapping[str, FormatAction] = field(default_factory=dict)

    def action(self, family: str) -> FormatAction:
        return self.actions.get(family, FormatAction.ALLOW)


@dataclass(frozen=True)
class Findings(Rule):
    block_at: Severity = BLOCK_AT
    allow_rules: frozenset[str] = frozenset()
    deny_rules: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CustomCode(Rule):
    allow: frozenset[str] = frozenset()  # "org/repo@<commit>"


@dataclass(frozen=True)
class Documentation(Rule):
    require_model_card: bool = False
    licenses: frozenset[str] = frozenset()  # empty: any license, if one is required at all
    require_license: bool = False


@dataclass(frozen=True)
class Size(Rule):
    max_file_bytes: int | None = None


@dataclass(frozen=True)
class Age(Rule):
    min_days: float = 0.0


@dataclass(frozen=True)
class Pinning(Rule):
    repos: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    version: str
    source: str  # the file it came from, or "default"
    mode: Mode
    publishers: Publishers
    formats: Formats
    findings: Findings
    custom_code: CustomCode
    documentation: Documentation
    size: Size
    age: Age
    pinning: Pinning

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(POLICY_ENV, f"cannot read {path}: {exc.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(POLICY_ENV, f"{path} is not valid TOML: {exc}") from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str, seen: set[str] | None = None
    ) -> Policy:
        """`seen`, when given, collects the dotted name of every key the loader reads, whether
        `data` sets it or not (see `known_keys`)."""
        reader = _Reader(data, "", seen=seen)
        mode = reader.enum("mode", Mode, Mode.ENFORCE)
        sections = {
            name: _Reader(reader.table(name), name, mode, seen=seen)
            for name in (
                "publishers",
                "formats",
                "findings",
                "custom_code",
                "documentation",
                "size",
                "age",
                "pinning",
            )
        }
        reader.done()
        s = sections
        actions: dict[str, FormatAction] = {}
        for family in FAMILIES:
            actions[family] = s["formats"].enum(family, FormatAction, FormatAction.ALLOW)
        pins: dict[str, frozenset[str]] = {}
        repos = s["pinning"].table("repos")
        for repo, commits in repos.items():
            if not isinstance(commits, list) or not all(
                isinstance(c, str) and _is_commit(c) for c in commits
            ):
                raise ConfigError(
                    POLICY_ENV, f"pinning.repos.{repo} must be a list of 40-hex commit shas"
                )
            pins[repo] = frozenset(c.lower() for c in commits)
        custom_allow = s["custom_code"].strings("allow")
        for entry in custom_allow:
            repo, _, commit = entry.partition("@")
            if not repo or not _is_commit(commit):
                raise ConfigError(
                    POLICY_ENV, f"custom_code.allow entries are 'org/repo@<commit sha>': {entry!r}"
                )
        max_bytes = s["size"].integer("max_file_bytes")
        policy = cls(
            version=_version(data),
            source=source,
            mode=mode,
            publishers=Publishers(
                *s["publishers"].common(),
                allow=tuple(s["publishers"].strings("allow")),
                deny=tuple(s["publishers"].strings("deny")),
                quarantine_unknown=s["publishers"].boolean("quarantine_unknown"),
            ),
            formats=Formats(*s["formats"].common(), actions=actions),
            findings=Findings(
                *s["findings"].common(),
                block_at=s["findings"].severity("block_at", BLOCK_AT),
                allow_rules=frozenset(s["findings"].strings("allow_rules")),
                deny_rules=frozenset(s["findings"].strings("deny_rules")),
            ),
            custom_code=CustomCode(
                *s["custom_code"].common(),
                allow=frozenset(_normal_pin(e) for e in custom_allow),
            ),
            documentation=Documentation(
                *s["documentation"].common(),
                require_model_card=s["documentation"].boolean("require_model_card"),
                require_license=s["documentation"].boolean("require_license"),
                licenses=frozenset(x.lower() for x in s["documentation"].strings("licenses")),
            ),
            size=Size(*s["size"].common(), max_file_bytes=max_bytes),
            age=Age(*s["age"].common(), min_days=s["age"].number("min_days")),
            pinning=Pinning(*s["pinning"].common(), repos=pins),
        )
        for section in s.values():
            section.done()
        return policy


def _version(data: Mapping[str, Any]) -> str:
    """A short digest of the policy's meaning (not of its comments or layout)."""
    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def _is_commit(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text)


def _normal_pin(entry: str) -> str:
    repo, _, commit = entry.partition("@")
    return f"{repo}@{commit.lower()}"


class _Reader:
    """Typed access to one table of the policy file; every key must be known and used."""

    def __init__(
        self,
        data: Mapping[str, Any],
        name: str,
        mode: Mode | None = None,
        *,
        seen: set[str] | None = None,
    ) -> None:
        self.data = data
        self.name = name
        self.mode = mode
        self.used: set[str] = set()
        self.seen = seen

    def _key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def _get(self, key: str) -> Any:
        self.used.add(key)
        if self.seen is not None:
            self.seen.add(self._key(key))
        return self.data.get(key)

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(POLICY_ENV, f"{self._key(key)} {problem}")

    def table(self, key: str) -> Mapping[str, Any]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def strings(self, key: str) -> list[str]:
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of non-empty strings")
        return value

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def integer(self, key: str) -> int | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, "must be a positive integer")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if value is None:
            return 0.0
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)  # TOML has nan and inf
            or value < 0
        ):
            raise self.fail(key, "must be a number, zero or more")
        return float(value)

    def enum[E: StrEnum](self, key: str, kind: type[E], default: E) -> E:
        value = self._get(key)
        if value is None:
            return default
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in kind)
            raise self.fail(key, f"must be one of {choices}, got {value!r}") from None

    def severity(self, key: str, default: Severity) -> Severity:
        value = self._get(key)
        if value is None:
            return default
        try:
            return Severity[str(value).upper()]
        except KeyError:
            choices = ", ".join(str(s) for s in Severity)
            raise self.fail(key, f"must be one of {choices}, got {value!r}") from None

    def common(self) -> tuple[str, Mode]:
        reason = self._get("reason")
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise self.fail("reason", "must be a non-empty string")
        assert self.mode is not None
        mode = self.enum("mode", Mode, self.mode)
        return (reason or DEFAULT_REASONS[self.name]).strip(), mode

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "is not a known policy key")


DEFAULT = Policy.from_mapping({}, source="default")


def known_keys() -> frozenset[str]:
    """Every key a policy file may set, dotted ("formats.pickle"), sections included: what the
    loader reads (an empty policy makes it read them all)."""
    seen: set[str] = set()
    Policy.from_mapping({}, source="default", seen=seen)
    return frozenset(seen)


def load_policy(path: Path | None) -> Policy:
    """The policy in force: the file's, or the default one without a file."""
    return DEFAULT if path is None else Policy.load(path)


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard:
    """What the documentation rule reads from a repo's README.md."""

    present: bool
    licenses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Review:
    action: str  # "approve" | "deny"
    reviewer: str
    reason: str


@dataclass(frozen=True)
class Subject:
    """Everything a decision may depend on."""

    repo_type: str
    repo_id: str
    commit: str
    path: str
    size_bytes: int
    report: ScanReport
    card: ModelCard | None = None  # None: not looked up (the rule is off)
    commit_ts: float | None = None  # None: not looked up (the rule is off) or unknown
    review: Review | None = None
    now: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Reason:
    rule: str
    verdict: Verdict
    text: str  # the policy's words, shown to the user
    detail: str  # what exactly triggered it
    enforced: bool = True

    def describe(self) -> str:
        return f"{self.text} ({self.detail})" if self.detail else self.text

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "verdict": self.verdict.value,
            "text": self.text,
            "detail": self.detail,
            "enforced": self.enforced,
        }

    @classmethod
    def from_json(cls, data: Any) -> Reason:
        if isinstance(data, str):  # decisions recorded before policies had rules
            return cls("findings", Verdict.BLOCK, data, "")
        return cls(
            str(data["rule"]),
            Verdict(data["verdict"]),
            str(data["text"]),
            str(data.get("detail", "")),
            bool(data.get("enforced", True)),
        )


@dataclass(frozen=True)
class Decision:
    verdict: Verdict  # what happens: only ALLOW is served
    reasons: tuple[Reason, ...]
    policy_version: str

    @property
    def enforced_reasons(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.enforced and r.verdict is not Verdict.ALLOW)

    @property
    def audit_only(self) -> bool:
        """Allowed, but some rule in audit mode would have refused it."""
        return self.verdict is Verdict.ALLOW and any(
            not r.enforced and r.verdict is not Verdict.ALLOW for r in self.reasons
        )

    def summary(self) -> str:
        return summarize(self.reasons)


def summarize(reasons: Sequence[Reason]) -> str:
    """The reasons a user is shown: those that decided, strictest first."""
    # A review overrides the rules either way, so it alone decided (an approval included).
    reviews = [r for r in reasons if r.rule == "review"]
    deciding = reviews or [r for r in reasons if r.enforced and r.verdict is not Verdict.ALLOW]
    ordered = sorted(deciding or reasons, key=lambda r: -r.verdict.rank)
    return "; ".join(r.describe() for r in ordered) or "allowed"


def evaluate(policy: Policy, subject: Subject) -> Decision:
    reasons = [
        *_publishers(policy.publishers, subject),
        *_formats(policy.formats, subject),
        *_findings(policy.findings, subject),
        *_custom_code(policy.custom_code, subject),
        *_documentation(policy.documentation, subject),
        *_size(policy.size, subject),
        *_age(policy.age, subject),
        *_pinning(policy.pinning, subject),
    ]
    verdict = max(
        (r.verdict for r in reasons if r.enforced), key=lambda v: v.rank, default=Verdict.ALLOW
    )
    review = subject.review
    if review is not None:
        # A review is a waiver or a refusal for these exact bytes in this repo.
        if review.action == "approve":
            verdict = Verdict.ALLOW
            reasons.append(
                Reason("review", Verdict.ALLOW, f"approved by {review.reviewer}", review.reason)
            )
        else:
            verdict = Verdict.BLOCK
            reasons.append(
                Reason("review", Verdict.BLOCK, f"denied by {review.reviewer}", review.reason)
            )
    return Decision(verdict, tuple(reasons), policy.version)


def _reason(rule: Rule, name: str, verdict: Verdict, detail: str) -> Reason:
    return Reason(name, verdict, rule.reason, detail, rule.mode is Mode.ENFORCE)


def _matches(repo_id: str, patterns: Sequence[str]) -> str | None:
    for pattern in patterns:
        if fnmatch.fnmatchcase(repo_id, pattern):
            return pattern
    return None


def _publishers(rule: Publishers, s: Subject) -> list[Reason]:
    denied = _matches(s.repo_id, rule.deny)
    if denied is not None:
        return [_reason(rule, "publishers", Verdict.BLOCK, f"{s.repo_id} matches deny {denied!r}")]
    if rule.quarantine_unknown and _matches(s.repo_id, rule.allow) is None:
        return [
            _reason(rule, "publishers", Verdict.QUARANTINE, f"{s.repo_id} is not on the allow list")
        ]
    return []


def _formats(rule: Formats, s: Subject) -> list[Reason]:
    found = s.report.contents or (s.report.format.value,)  # nested formats included
    families = sorted({family_of(f) for f in found})
    reasons = []
    for family in families:
        action = rule.action(family)
        if action is FormatAction.BLOCK:
            reasons.append(_reason(rule, "formats", Verdict.BLOCK, f"{family} files are blocked"))
        elif action is FormatAction.CONVERT:
            reasons.append(
                _reason(
                    rule,
                    "formats",
                    Verdict.BLOCK,
                    f"{family} files are to be converted to safetensors, which this Airlock "
                    "cannot do yet, so they are blocked",
                )
            )
        elif action is FormatAction.ALLOW_IF_CLEAN:
            noted = [f for f in s.report.findings if f.severity > Severity.INFO]
            if noted:
                reasons.append(
                    _reason(
                        rule,
                        "formats",
                        Verdict.QUARANTINE,
                        f"{family} files are allowed only without findings; found "
                        + ", ".join(sorted({f.rule for f in noted})),
                    )
                )
    return reasons


def _findings(rule: Findings, s: Subject) -> list[Reason]:
    reasons = []
    for finding in s.report.findings:
        if finding.rule == CUSTOM_CODE_RULE or finding.rule in rule.allow_rules:
            continue
        if finding.severity >= rule.block_at or finding.rule in rule.deny_rules:
            reasons.append(_reason(rule, "findings", Verdict.BLOCK, finding.describe()))
    return reasons


def _custom_code(rule: CustomCode, s: Subject) -> list[Reason]:
    found = [f for f in s.report.findings if f.rule == CUSTOM_CODE_RULE]
    if not found or f"{s.repo_id}@{s.commit.lower()}" in rule.allow:
        return []
    return [_reason(rule, "custom_code", Verdict.BLOCK, found[0].describe())]


def _documentation(rule: Documentation, s: Subject) -> list[Reason]:
    if s.path in CARD_FILES or s.card is None:
        return []
    if not s.card.present:
        if rule.require_model_card or rule.require_license or rule.licenses:
            return [_reason(rule, "documentation", Verdict.QUARANTINE, "the repo has no README.md")]
        return []
    if not s.card.licenses:
        if rule.require_license or rule.licenses:
            return [
                _reason(
                    rule, "documentation", Verdict.QUARANTINE, "the model card names no license"
                )
            ]
        return []
    if rule.licenses:
        refused = [x for x in s.card.licenses if x.lower() not in rule.licenses]
        if refused:
            return [
                _reason(
                    rule,
                    "documentation",
                    Verdict.BLOCK,
                    f"license {', '.join(refused)} is not on the allowed list",
                )
            ]
    return []


def _size(rule: Size, s: Subject) -> list[Reason]:
    if rule.max_file_bytes is None or s.size_bytes <= rule.max_file_bytes:
        return []
    return [
        _reason(rule, "size", Verdict.BLOCK, f"{s.size_bytes} bytes > {rule.max_file_bytes} bytes")
    ]


def _age(rule: Age, s: Subject) -> list[Reason]:
    if rule.min_days <= 0 or s.path in CARD_FILES:
        return []
    if s.commit_ts is None:
        return [_reason(rule, "age", Verdict.QUARANTINE, "the commit's date could not be learned")]
    age_days = (s.now - s.commit_ts) / 86400
    if age_days >= rule.min_days:
        return []
    return [
        _reason(
            rule,
            "age",
            Verdict.QUARANTINE,
            f"the commit is {age_days:.1f} days old; the policy asks for {rule.min_days:g}",
        )
    ]


def _pinning(rule: Pinning, s: Subject) -> list[Reason]:
    approved = rule.repos.get(s.repo_id)
    if approved is None or s.commit.lower() in approved:
        return []
    return [
        _reason(rule, "pinning", Verdict.QUARANTINE, f"commit {s.commit} is not an approved pin")
    ]


def refused_before_fetch(policy: Policy, repo_id: str, path: str, size_bytes: int) -> Reason | None:
    """An enforced block that no content, review or card could change (a denied publisher, a
    file over the size limit): the file need not be fetched at all. Reviews cover bytes, and
    these bytes are never fetched, so there is nothing to review either."""
    subject = Subject("model", repo_id, "0" * 40, path, size_bytes, ScanReport(Format.UNKNOWN, ""))
    for reason in (*_publishers(policy.publishers, subject), *_size(policy.size, subject)):
        if reason.enforced and reason.verdict is Verdict.BLOCK:
            return reason
    return None


def decide(report: ScanReport, policy: Policy = DEFAULT) -> Decision:
    """The decision for a file on its own (no repo facts): what `airlock scan` applies."""
    subject = Subject("model", "local/file", "0" * 40, "file", 0, report)
    return evaluate(policy, subject)


def uses_card(policy: Policy) -> bool:
    d = policy.documentation
    return d.require_model_card or d.require_license or bool(d.licenses)
