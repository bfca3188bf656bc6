"""The review service: what security teams see and do, for the web UI and the admin API alike.

Approving or denying a decision records a review of those exact bytes in that repo and makes
every decision about them again at once, so the next request gets the new answer. Reloading the
policy, or rescanning, makes every stored decision again in the background.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from cache.registry import AsyncRegistry, DecisionRow, Registry, ReviewRow
from proxy.auth import Caller
from proxy.errors import AirlockError, ConfigError
from proxy.pipeline import Pipeline
from proxy.policy import Policy, Reason, load_policy
from proxy.scan.report import ScanReport

log = structlog.get_logger(__name__)

REVIEW_ACTIONS = ("approve", "deny")
MAX_REASON_CHARS = 2000
Notify = Callable[[str, dict[str, Any]], None]


class ReviewError(Exception):
    """Bad review input: an unknown decision, an empty reason."""


@dataclass(frozen=True)
class ReasonView:
    rule: str
    verdict: str
    text: str
    detail: str
    enforced: bool


@dataclass(frozen=True)
class DecisionView:
    id: int
    repo_type: str
    repo_id: str
    commit_sha: str
    path: str
    sha256: str
    verdict: str
    enforced: bool  # False: allowed only because the refusing rules are in audit mode
    review_state: str
    reasons: list[ReasonView]
    format: str | None
    size_bytes: int
    policy_version: str
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["reasons"] = [r.__dict__ for r in self.reasons]
        return data


@dataclass(frozen=True)
class FindingView:
    rule: str
    severity: str
    message: str
    location: str | None


@dataclass(frozen=True)
class ReviewView:
    action: str
    reviewer: str
    reason: str
    ts: float


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: float
    kind: str  # "request" | "review" | "decision" | "policy" | "rescan"
    actor: str | None
    summary: str
    status: int | None
    repo_id: str | None
    path: str | None
    verdict: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DecisionDetail:
    decision: DecisionView
    findings: list[FindingView]
    git_sha1: str | None
    etag: str | None
    lfs: bool | None
    scanner: str
    scanner_version: str
    requests: list[AuditEntry]
    reviews: list[ReviewView]

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.to_json(),
            "findings": [f.__dict__ for f in self.findings],
            "git_sha1": self.git_sha1,
            "etag": self.etag,
            "lfs": self.lfs,
            "scanner": self.scanner,
            "scanner_version": self.scanner_version,
            "requests": [r.to_json() for r in self.requests],
            "reviews": [r.__dict__ for r in self.reviews],
        }


@dataclass(frozen=True)
class Dashboard:
    days: list[str]
    by_verdict: dict[str, list[int]]
    by_format: dict[str, list[int]]
    totals: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ReviewService:
    def __init__(
        self,
        registry: AsyncRegistry,
        pipeline: Pipeline,
        system_caller: Caller,
        notify: Notify | None = None,
        policy_path: Path | None = None,
    ) -> None:
        self.policy_path = policy_path
        self.registry = registry
        self.pipeline = pipeline
        self.system_caller = system_caller
        self.notify: Notify = notify or (lambda event, data: None)
        self._background: set[asyncio.Task[object]] = set()

    # --- reading ----------------------------------------------------------------------------

    async def queue(
        self,
        *,
        states: Sequence[str] = ("quarantine", "block"),
        repo: str | None = None,
        format: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionView]:
        verdicts = tuple(states)
        rows = await self.registry.read(
            lambda r: r.decisions(
                verdicts=verdicts, repo=repo, format=format, limit=limit, offset=offset
            )
        )
        return [view(row) for row in rows]

    async def detail(self, decision_id: int) -> DecisionDetail | None:
        return await self.registry.read(lambda r: _detail(r, decision_id))

    async def audit(
        self, *, since: float = 0.0, limit: int = 200, before: float | None = None
    ) -> list[AuditEntry]:
        """Requests and events from `since` up to (not including) `before`, newest first; the
        next page starts before the oldest entry of this one."""
        rows, events = await self.registry.read(
            lambda r: (r.audit_page(since, limit, before), r.events_page(since, limit, before))
        )
        entries = [_request_entry(row) for row in rows] + [_event_entry(e) for e in events]
        entries.sort(key=lambda e: e.ts, reverse=True)
        return entries[:limit]

    async def dashboard(self, *, days: int = 14) -> Dashboard:
        today = datetime.now(UTC).date()
        day_list = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
        since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
        rows = await self.registry.read(lambda r: r.decision_counts_by_day(since.timestamp()))
        index = {day: i for i, day in enumerate(day_list)}
        by_verdict: dict[str, list[int]] = {}
        by_format: dict[str, list[int]] = {}
        totals: dict[str, int] = {}
        for row in rows:
            slot = index.get(row["day"])
            if slot is None:
                continue
            n = int(row["n"])
            by_verdict.setdefault(row["verdict"], [0] * days)[slot] += n
            by_format.setdefault(row["format"], [0] * days)[slot] += n
            totals[row["verdict"]] = totals.get(row["verdict"], 0) + n
        return Dashboard(day_list, by_verdict, by_format, totals)

    # --- acting -----------------------------------------------------------------------------

    async def approve(self, decision_id: int, *, reviewer: str, reason: str) -> DecisionView:
        return await self._review(decision_id, "approve", reviewer, reason)

    async def deny(self, decision_id: int, *, reviewer: str, reason: str) -> DecisionView:
        return await self._review(decision_id, "deny", reviewer, reason)

    async def _review(
        self, decision_id: int, action: str, reviewer: str, reason: str
    ) -> DecisionView:
        reason = reason.strip()
        if not reason:
            raise ReviewError("a review needs a reason")
        if len(reason) > MAX_REASON_CHARS:
            raise ReviewError(f"the reason is longer than {MAX_REASON_CHARS} characters")
        decision = await self.registry.read(lambda r: r.decision(decision_id))
        if decision is None:
            raise ReviewError(f"there is no decision #{decision_id}")
        await self.registry.write(
            lambda r: r.record_review(decision, action=action, reviewer=reviewer, reason=reason)
        )
        log.info(
            "review_recorded",
            decision_id=decision_id,
            action=action,
            reviewer=reviewer,
            sha256=decision.sha256,
            repo_id=decision.repo_id,
        )
        # The review covers these bytes in this repo under every commit and path.
        siblings = await self.registry.read(lambda r: r.decisions_for_blob(decision.sha256))
        for sibling in siblings:
            if (sibling.repo_type, sibling.repo_id) == (decision.repo_type, decision.repo_id):
                await self._redecide(sibling, rescan=False)
        updated = await self.registry.read(lambda r: r.decision(decision_id))
        assert updated is not None
        self.notify(
            "review_action",
            {
                "action": action,
                "reviewer": reviewer,
                "reason": reason,
                "decision": view(updated).to_json(),
            },
        )
        return view(updated)

    async def reload_from_file(self, *, actor: str) -> Policy:
        """Read the policy file again and put it in force. A bad file raises ConfigError
        (naming the key) and the policy in force stays."""
        policy = load_policy(self.policy_path)
        await self.reload_policy(policy, actor=actor)
        return policy

    async def reload_policy(self, policy: Policy, *, actor: str) -> None:
        """Put a new policy in force; decisions are made again in the background."""
        previous = self.pipeline.policy.version
        self.pipeline.policy = policy
        await self.registry.write(
            lambda r: r.record_event(
                "policy",
                actor=actor,
                summary=f"policy {policy.version} from {policy.source} (was {previous})",
                data={"version": policy.version, "previous": previous, "source": policy.source},
            )
        )
        log.info("policy_loaded", version=policy.version, source=policy.source, actor=actor)
        self._in_background(rescan=False)

    async def rescan(self, *, actor: str, everything: bool = False) -> None:
        """Scan stored blobs again (those scanned by another scanner version, or all) and make
        their decisions again, in the background."""
        await self.registry.write(
            lambda r: r.record_event(
                "rescan",
                actor=actor,
                summary="rescan of every blob" if everything else "rescan of stale blobs",
                data={"everything": everything, "scanner_version": self.pipeline.scanner.version},
            )
        )
        self._in_background(rescan=everything)

    def reload_soon(self, actor: str) -> None:
        """Reload the policy file in the background (SIGHUP); a bad file is logged, and the
        policy in force stays."""

        async def reload() -> None:
            try:
                await self.reload_from_file(actor=actor)
            except ConfigError as exc:
                log.exception("policy_reload_failed", error=str(exc), actor=actor)

        self._start(reload())

    def _in_background(self, *, rescan: bool) -> None:
        self._start(self.redecide_all(rescan=rescan))

    def _start(self, work: Coroutine[object, object, object]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("decisions_remake_failed", error=repr(task.exception()))

    async def redecide_all(self, *, rescan: bool) -> int:
        """Make every stored decision again; returns how many changed their verdict."""
        changed = 0
        scanned: set[str] = set()
        ids = await self.registry.read(lambda r: r.decision_ids())
        for decision_id in ids:
            row = await self.registry.read(partial(Registry.decision, decision_id=decision_id))
            if row is None:
                continue
            fresh_scan = rescan and row.sha256 not in scanned
            scanned.add(row.sha256)
            try:
                after = await self._redecide(row, rescan=fresh_scan)
            except AirlockError as exc:
                log.warning("redecide_failed", decision_id=row.id, error=exc.message)
                continue
            changed += after is not None and after.verdict != row.verdict
        log.info("decisions_remade", changed=changed, rescan=rescan)
        return changed

    async def wait_idle(self) -> None:
        """Wait for background reloads and re-decisions (tests, and shutdown)."""
        while self._background:
            await asyncio.wait(list(self._background))
            # Done tasks leave the set by callback, which has not run yet if nothing awaited.
            self._background = {task for task in self._background if not task.done()}

    async def _redecide(self, row: DecisionRow, *, rescan: bool) -> DecisionRow | None:
        key = (row.repo_type, row.repo_id, row.commit_sha, row.path)
        file, blob = await self.registry.read(lambda r: (r.file(*key), r.blob(row.sha256)))
        if file is None or blob is None or file.sha256 != row.sha256:
            return None
        return await self.pipeline.decision(
            file, blob, self.system_caller, remake=True, rescan=rescan
        )


def view(row: DecisionRow) -> DecisionView:
    reasons = [Reason.from_json(r) for r in row.reasons]
    return DecisionView(
        id=row.id,
        repo_type=row.repo_type,
        repo_id=row.repo_id,
        commit_sha=row.commit_sha,
        path=row.path,
        sha256=row.sha256,
        verdict=row.verdict,
        enforced=not row.audit_only,
        review_state=row.review_state,
        reasons=[
            ReasonView(r.rule, r.verdict.value, r.text, r.detail, r.enforced) for r in reasons
        ],
        format=row.format,
        size_bytes=row.size_bytes,
        policy_version=row.policy_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _detail(r: Registry, decision_id: int) -> DecisionDetail | None:
    row = r.decision(decision_id)
    if row is None:
        return None
    blob = r.blob(row.sha256)
    file = r.file(row.repo_type, row.repo_id, row.commit_sha, row.path)
    findings: list[FindingView] = []
    scanner_version = blob.scanner_version if blob else None
    if blob is not None and blob.report is not None:
        report = ScanReport.from_json(json.loads(blob.report))
        findings = [
            FindingView(f.rule, str(f.severity), f.message, f.location) for f in report.findings
        ]
    reviews: list[ReviewRow] = r.reviews_for(row.sha256, row.repo_type, row.repo_id)
    requests = r.requests_for(row.repo_type, row.repo_id, row.commit_sha, row.path)
    return DecisionDetail(
        decision=view(row),
        findings=findings,
        git_sha1=blob.git_sha1 if blob else None,
        etag=file.etag if file else None,
        lfs=file.lfs if file else None,
        scanner=row.scanner,
        scanner_version=scanner_version or row.scanner_version,
        requests=[_request_entry(q) for q in requests],
        reviews=[ReviewView(v.action, v.reviewer, v.reason, v.ts) for v in reviews],
    )


def _request_entry(row: dict[str, Any]) -> AuditEntry:
    actor = row.get("client_addr") or ""
    if row.get("token_fp"):
        actor = f"{actor} token:{row['token_fp']}".strip()
    return AuditEntry(
        id=int(row["id"]),
        ts=float(row["ts"]),
        kind="request",
        actor=actor or None,
        summary=f"{row['method']} {row['url_path']}",
        status=int(row["status"]),
        repo_id=row.get("repo_id"),
        path=row.get("path"),
        verdict=row.get("verdict"),
    )


def _event_entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        ts=float(row["ts"]),
        kind=str(row["kind"]),
        actor=row.get("actor"),
        summary=str(row["summary"]),
        status=None,
        repo_id=None,
        path=None,
        verdict=None,
    )
