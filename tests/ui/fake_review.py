"""An in-memory stand-in for proxy.review.ReviewService, for page tests that need exact data
(escaping, every field, paging) and a record of every call. It returns the real view types.
End-to-end browser tests use the real service."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from proxy.review import (
    MAX_REASON_CHARS,
    AuditEntry,
    Dashboard,
    DecisionDetail,
    DecisionView,
    FindingView,
    ReasonView,
    ReviewError,
    ReviewView,
)

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def decision(
    decision_id: int,
    *,
    repo_id: str = "acme/evil",
    path: str = "pytorch_model.bin",
    verdict: str = "quarantine",
    fmt: str | None = "pickle",
) -> DecisionView:
    return DecisionView(
        id=decision_id,
        repo_type="model",
        repo_id=repo_id,
        commit_sha=f"{decision_id:040x}",
        path=path,
        sha256=f"{decision_id:064x}",
        verdict=verdict,
        enforced=True,
        review_state="none",
        reasons=[
            ReasonView(
                "findings",
                verdict,
                "the scan found content that could run code when the model is loaded",
                "pickle-global posix.system",
                True,
            )
        ],
        format=fmt,
        size_bytes=5000 + decision_id,
        policy_version="policy-v1",
        created_at=T0 + decision_id,
        updated_at=T0 + decision_id,
    )


class FakeReviewService:
    def __init__(self, decisions: Sequence[DecisionView] = ()) -> None:
        self.decisions = {d.id: d for d in decisions}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reviews: dict[int, list[ReviewView]] = {}
        self.audit_entries: list[AuditEntry] = [
            AuditEntry(
                id=i,
                ts=T0 + i * 60,
                kind="request",
                actor="127.0.0.1",
                summary=f"GET /acme/evil/resolve/main/file-{i}",
                status=403,
                repo_id="acme/evil",
                path=f"file-{i}",
                verdict="quarantine",
            )
            for i in range(1, 251)
        ]

    async def queue(
        self,
        *,
        states: Sequence[str] = ("quarantine", "block"),
        repo: str | None = None,
        format: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionView]:
        self.calls.append(
            ("queue", {"states": tuple(states), "repo": repo, "format": format, "offset": offset})
        )
        found = [
            d
            for d in sorted(self.decisions.values(), key=lambda d: d.id)
            if d.verdict in states
            and d.review_state == "none"
            and (repo is None or repo in d.repo_id)
            and (format is None or d.format == format)
        ]
        return found[offset : offset + limit]

    async def detail(self, decision_id: int) -> DecisionDetail | None:
        self.calls.append(("detail", {"id": decision_id}))
        d = self.decisions.get(decision_id)
        if d is None:
            return None
        return DecisionDetail(
            decision=d,
            findings=[
                FindingView(
                    "pickle-global",
                    "CRITICAL",
                    "imports posix.system, which runs a shell command",
                    "pytorch_model.bin:data.pkl@12",
                )
            ],
            git_sha1="ab" * 20,
            etag='"etag-' + d.sha256[:8] + '"',
            lfs=True,
            scanner="airlock-engine",
            scanner_version="9.9",
            requests=[e for e in self.audit_entries if e.path == "file-1"],
            reviews=self.reviews.get(decision_id, []),
        )

    async def approve(self, decision_id: int, *, reviewer: str, reason: str) -> DecisionView:
        return self._review("approve", decision_id, reviewer, reason)

    async def deny(self, decision_id: int, *, reviewer: str, reason: str) -> DecisionView:
        return self._review("deny", decision_id, reviewer, reason)

    def _review(self, action: str, decision_id: int, reviewer: str, reason: str) -> DecisionView:
        self.calls.append((action, {"id": decision_id, "reviewer": reviewer, "reason": reason}))
        d = self.decisions.get(decision_id)
        if d is None:
            raise ReviewError(f"there is no decision #{decision_id}")
        if not reason.strip():
            raise ReviewError("a review needs a reason")
        if len(reason) > MAX_REASON_CHARS:
            raise ReviewError(f"the reason is longer than {MAX_REASON_CHARS} characters")
        state = "approved" if action == "approve" else "denied"
        updated = dataclasses.replace(
            d, review_state=state, verdict="allow" if action == "approve" else "block"
        )
        self.decisions[decision_id] = updated
        self.reviews.setdefault(decision_id, []).append(
            ReviewView(action, reviewer, reason, T0 + 3600)
        )
        return updated

    async def audit(
        self, *, since: float = 0.0, limit: int = 200, before: float | None = None
    ) -> list[AuditEntry]:
        self.calls.append(("audit", {"since": since, "limit": limit, "before": before}))
        rows = [
            e
            for e in reversed(self.audit_entries)
            if e.ts >= since and (before is None or e.ts < before)
        ]
        return rows[:limit]

    async def dashboard(self, *, days: int = 14) -> Dashboard:
        self.calls.append(("dashboard", {"days": days}))
        day_list = [f"2026-01-{d:02d}" for d in range(1, days + 1)]
        return Dashboard(
            days=day_list,
            by_verdict={
                "allow": [10 + i for i in range(days)],
                "block": [i % 3 for i in range(days)],
                "quarantine": [1] * days,
            },
            by_format={"safetensors": [7] * days, "pickle": [2] * days},
            totals={"allow": sum(10 + i for i in range(days)), "quarantine": days},
        )

    async def wait_idle(self) -> None:
        pass

    def changed(self) -> bool:
        return any(name in ("approve", "deny") for name, _ in self.calls)
