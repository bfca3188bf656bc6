"""The order of the steps, and the only place that knows it.

    admit(file, caller):
        revision -> commit          (registry, short TTL for branches; commits never change)
        registry.lookup(commit, path)
            cleared  -> Ready        (after an access check for restricted repos)
            blocked  -> Blocked
            unknown  -> upstream.file_meta -> one Flight per blob (single flight):
                        fetch.stage -> fetch.verify -> scan -> policy.evaluate
                        -> blobs.commit (allowed) | blobs.quarantine (corrupt, refused)

Decisions are per file (repo, commit, path, blob): the same bytes may be allowed in one repo
and refused in another. A stored decision stands while the policy and scanner versions it was
made under are current; otherwise it is made again from the stored scan report (scanning the
bytes again first when the scanner changed), with the facts the policy needs (the model card,
the commit's date) and the latest review of these bytes in this repo.

Release points (architecture.md): a safetensors file may stream to waiting clients once its
header has been checked; every other format is held until it is verified and scanned.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from cache.blobs import BlobStore
from cache.registry import AsyncRegistry, BlobRow, BlobState, DecisionRow, FileRow
from proxy.auth import AccessConfirmations, Caller
from proxy.errors import (
    AirlockError,
    Blocked,
    EntryNotFound,
    IntegrityMismatch,
    Pending,
    Refused,
    TooLarge,
    UpstreamError,
    UpstreamUnavailable,
)
from proxy.fetch import Progress, StagedBlob, stage, verify
from proxy.hub import GIT_SHA1_RE, FileRef, RepoRef, RepoType
from proxy.model_card import card_licenses
from proxy.policy import (
    CARD_FILES,
    ModelCard,
    Policy,
    Reason,
    Review,
    Subject,
    Verdict,
    evaluate,
    refused_before_fetch,
    summarize,
    uses_card,
)
from proxy.scan import Scanner, safetensors, scanner_failure
from proxy.scan.report import Finding, ScanReport
from proxy.settings import Settings
from proxy.upstream import UpstreamClient, UpstreamMeta

log = structlog.get_logger(__name__)

OFFLINE_WARNING = "Airlock could not reach upstream; this answer comes from Airlock's cache"
MAX_RETRY_AFTER_S = 60
# Before the first bytes arrive the transfer rate is unknown: ask again soon.
UNKNOWN_RETRY_AFTER_S = 2


@dataclass(frozen=True)
class Ready:
    """A cleared blob, on disk, that this caller may read."""

    file: FileRow
    blob_path: Path
    warning: str | None = None


@dataclass
class Hooks:
    """What the pipeline tells the rest of Airlock (metrics, the webhook); no-ops by default."""

    scanned: Callable[[ScanReport], None] = field(default=lambda report: None)
    decided: Callable[[DecisionRow, bool], None] = field(default=lambda row, changed: None)
    quarantined: Callable[[DecisionRow], None] = field(default=lambda row: None)


@dataclass(frozen=True)
class Cleared:
    sha256: str
    size_bytes: int
    blob_path: Path


class Flight:
    """One upstream fetch of one blob, shared by every request that wants it."""

    def __init__(self, key: str, meta: UpstreamMeta, progress: Progress) -> None:
        self.key = key
        self.meta = meta
        self.progress = progress
        self.task: asyncio.Task[Cleared] | None = None

    @property
    def finished(self) -> bool:
        return self.task is not None and self.task.done()

    @property
    def failed(self) -> bool:
        task = self.task
        return (
            task is not None and task.done() and (task.cancelled() or task.exception() is not None)
        )

    async def wait(self, timeout_s: float | None) -> Cleared | None:
        """The outcome (raising the refusal), or None if still running after `timeout_s`."""
        assert self.task is not None
        if timeout_s is None:
            return await asyncio.shield(self.task)
        done, _ = await asyncio.wait({self.task}, timeout=timeout_s)
        return self.task.result() if done else None

    async def wait_streamable(self, timeout_s: float) -> bool:
        """Wait until the file may stream, is finished, or the time is up."""
        deadline = time.monotonic() + timeout_s
        while not (self.progress.streamable or self.finished):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            waiter = asyncio.ensure_future(self.progress.changed(remaining))
            assert self.task is not None
            await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        return True

    def pending_error(self, file: FileRef) -> Pending:
        progress = self.progress
        eta_s = progress.eta_s()
        retry_after_s = (
            UNKNOWN_RETRY_AFTER_S
            if eta_s is None
            else min(MAX_RETRY_AFTER_S, max(1, math.ceil(eta_s)))
        )
        percent = 100 * progress.bytes_done / progress.size_bytes if progress.size_bytes else 100
        eta_text = "unknown time" if eta_s is None else f"about {math.ceil(eta_s)} s"
        return Pending(
            f"Airlock is fetching and scanning {file.path} from upstream before serving it: "
            f"{progress.bytes_done} of {progress.size_bytes} bytes ({percent:.0f}%), "
            f"{eta_text} left. Retry shortly; large files may need a higher "
            "HF_HUB_ETAG_TIMEOUT.",
            retry_after_s=retry_after_s,
        )


@dataclass(frozen=True)
class Fetching:
    """The file is not cached yet; `flight` is fetching it."""

    file: FileRef  # at its resolved commit
    meta: UpstreamMeta
    flight: Flight


Admission = Ready | Fetching


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        store: BlobStore,
        registry: AsyncRegistry,
        upstream: UpstreamClient,
        scanner: Scanner,
        policy: Policy,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.hooks = Hooks()
        self.store = store
        self.registry = registry
        self.upstream = upstream
        self.scanner = scanner
        self.access = AccessConfirmations(settings.access_ttl_s)
        self.flights: dict[str, Flight] = {}
        # flight key -> (monotonic deadline, the error that ended the last fetch)
        self.failures: dict[str, tuple[float, AirlockError]] = {}

    # --- admission ----------------------------------------------------------------------------

    async def admit(self, file: FileRef, caller: Caller) -> Admission:
        commit = await self.cached_commit(file.repo, file.revision, stale_ok=False)
        if commit is not None:
            ready = await self._ready(file.at(commit), caller)
            if ready is not None:
                await self._check_access(file.at(commit), caller)
                return ready
        try:
            meta = await self.upstream.file_meta(file.at(commit) if commit else file, caller)
        except UpstreamUnavailable:
            return await self._offline(file, caller)
        await self._learn_access(file.repo, caller)
        if not GIT_SHA1_RE.match(file.revision):
            await self.registry.write(
                lambda r: r.record_revision(
                    file.repo.repo_type, file.repo.repo_id, file.revision, meta.commit
                )
            )
        at_commit = file.at(meta.commit)
        ready = await self._ready(at_commit, caller) or await self._ready_by_hash(
            at_commit, meta, caller
        )
        if ready is not None:
            return ready
        if meta.size_bytes > self.settings.max_file_size_bytes:
            raise TooLarge(
                f"Airlock refused {file.path} in {file.repo.repo_id}: {meta.size_bytes} bytes is "
                f"above this mirror's limit of {self.settings.max_file_size_bytes} bytes"
            )
        refused = refused_before_fetch(
            self.policy, file.repo.repo_id, at_commit.path, meta.size_bytes
        )
        if refused is not None:
            # Nothing about the content could change this: do not fetch it at all.
            log.info(
                "policy_refused_before_fetch",
                repo_id=file.repo.repo_id,
                path=file.path,
                reason=refused.to_json(),
            )
            raise Blocked(
                f"Airlock blocked {file.path} in {file.repo.repo_id}@{meta.commit}: "
                f"{refused.describe()}. Nothing was downloaded.",
                decision_id=None,
                reasons=[refused.describe()],
                at_commit=meta.commit,
                upstream_file=(meta.etag, meta.size_bytes),
            )
        failure = self.failures.get(meta.flight_key)
        if failure is not None and failure[0] > time.monotonic():
            raise failure[1]
        return Fetching(at_commit, meta, self._join_flight(at_commit, meta, caller))

    async def cached_commit(self, repo: RepoRef, revision: str, *, stale_ok: bool) -> str | None:
        """The commit a revision points at, if known: a commit is itself; a branch or tag is
        trusted for `revision_ttl_s` (or forever when upstream is down and `stale_ok`)."""
        if GIT_SHA1_RE.match(revision):
            return revision
        known = await self.registry.read(
            lambda r: r.revision(repo.repo_type, repo.repo_id, revision)
        )
        if known is None:
            return None
        commit, resolved_at = known
        if stale_ok or time.time() - resolved_at < self.settings.revision_ttl_s:
            return commit
        return None

    async def _ready(self, file: FileRef, caller: Caller) -> Ready | None:
        row = await self.registry.read(
            lambda r: r.file(file.repo.repo_type, file.repo.repo_id, file.revision, file.path)
        )
        if row is None:
            return None
        blob = await self.registry.read(lambda r: r.blob(row.sha256))
        return await self._servable(row, blob, caller)

    async def _ready_by_hash(
        self, file: FileRef, meta: UpstreamMeta, caller: Caller
    ) -> Ready | None:
        """The same bytes may already be here under another repo, commit or path."""
        if meta.sha256 is not None:
            sha256 = meta.sha256
            blob = await self.registry.read(lambda r: r.blob(sha256))
        else:
            git_sha1 = meta.git_sha1 or ""
            blob = await self.registry.read(lambda r: r.blob_by_git_sha1(git_sha1))
        if blob is None or blob.size_bytes != meta.size_bytes:
            return None
        row = _file_row(file, meta, blob.sha256)
        await self.registry.write(lambda r: r.record_file(row))
        return await self._servable(row, blob, caller)

    async def _servable(self, row: FileRow, blob: BlobRow | None, caller: Caller) -> Ready | None:
        if blob is None or blob.state is BlobState.CORRUPT:
            return None
        decision = await self.decision(row, blob, caller)
        if decision.verdict != Verdict.ALLOW:
            raise self.refusal(decision, row)
        path = self.store.path(blob.sha256)
        if path is None and blob.state is BlobState.BLOCKED:
            path = await self.release(blob.sha256)
        if path is None:
            log.error("blob_missing", sha256=blob.sha256)
            return None
        return Ready(row, path)

    async def release(self, sha256: str) -> Path | None:
        """Bytes that were allowed nowhere are allowed now (a review, a new policy)."""
        loop = asyncio.get_running_loop()
        path = await loop.run_in_executor(None, self.store.release, sha256)
        if path is not None:
            await self.registry.write(lambda r: r.set_blob_state(sha256, BlobState.CLEARED))
            log.info("blob_released", sha256=sha256)
        return path

    # --- decisions ------------------------------------------------------------------------------

    async def decision(
        self,
        row: FileRow,
        blob: BlobRow,
        caller: Caller,
        *,
        remake: bool = False,
        rescan: bool = False,
    ) -> DecisionRow:
        """The current decision for one file: the stored one while the policy and scanner it
        was made under are current, else a new one. `remake` decides again from the stored
        report (after a review); `rescan` scans the stored bytes again first."""
        key = (row.repo_type, row.repo_id, row.commit_sha, row.path, blob.sha256)
        existing = await self.registry.read(lambda r: r.decision_for(*key))
        if (
            not (remake or rescan)
            and existing is not None
            and existing.policy_version == self.policy.version
            and existing.scanner_version == self.scanner.version
            and blob.scanner_version == self.scanner.version
        ):
            return existing
        report = await self._stored_report(blob, row.path, rescan=rescan)
        return await self._decide(row, blob.sha256, report, caller)

    async def _stored_report(self, blob: BlobRow, name: str, *, rescan: bool) -> ScanReport:
        if not rescan and blob.report is not None and blob.scanner_version == self.scanner.version:
            try:
                return ScanReport.from_json(json.loads(blob.report))
            except (KeyError, TypeError, ValueError):
                log.exception("stored_report_unreadable", sha256=blob.sha256)
        path = self.store.stored(blob.sha256)
        if path is None:
            return scanner_failure(self.scanner.name, FileNotFoundError(blob.sha256))
        report = await self._scan(path, blob.size_bytes, blob.sha256, name)
        await self.registry.write(
            lambda r: r.record_blob(
                sha256=blob.sha256,
                git_sha1=blob.git_sha1,
                size_bytes=blob.size_bytes,
                state=blob.state,
                format=report.format.value,
                reason=blob.reason,
                report=json.dumps(report.to_json()),
                scanner_version=self.scanner.version,
            )
        )
        return report

    async def _decide(
        self, row: FileRow, sha256: str, report: ScanReport, caller: Caller
    ) -> DecisionRow:
        repo = RepoRef(RepoType(row.repo_type), row.repo_id)
        card, commit_ts = await self._facts(repo, row.commit_sha, row.path, caller)
        review = await self.registry.read(
            lambda r: r.latest_review(sha256, row.repo_type, row.repo_id)
        )
        subject = Subject(
            repo_type=row.repo_type,
            repo_id=row.repo_id,
            commit=row.commit_sha,
            path=row.path,
            size_bytes=row.size_bytes,
            report=report,
            card=card,
            commit_ts=commit_ts,
            review=None
            if review is None
            else Review(review.action, review.reviewer, review.reason),
        )
        decision = evaluate(self.policy, subject)
        stored, changed = await self.registry.write(
            lambda r: r.record_decision(
                sha256=sha256,
                repo_type=row.repo_type,
                repo_id=row.repo_id,
                commit=row.commit_sha,
                path=row.path,
                verdict=decision.verdict.value,
                reasons=[reason.to_json() for reason in decision.reasons],
                scanner=report.scanner,
                scanner_version=self.scanner.version,
                policy_version=decision.policy_version,
                format=report.format.value,
                size_bytes=row.size_bytes,
                audit_only=decision.audit_only,
            )
        )
        log.info(
            "policy_decided",
            repo_id=row.repo_id,
            commit=row.commit_sha,
            path=row.path,
            sha256=sha256,
            verdict=decision.verdict.value,
            audit_only=decision.audit_only,
            reasons=[r.to_json() for r in decision.reasons],
            policy_version=decision.policy_version,
            decision_id=stored.id,
        )
        self.hooks.decided(stored, changed)
        return stored

    async def _facts(
        self, repo: RepoRef, commit: str, path: str, caller: Caller
    ) -> tuple[ModelCard | None, float | None]:
        """The model card and the commit's date, when the policy reads them (cached per
        commit: commits never change)."""
        need_card = uses_card(self.policy)
        need_date = self.policy.age.min_days > 0
        if path in CARD_FILES or not (need_card or need_date):
            return None, None
        known = await self.registry.read(
            lambda r: r.commit_facts(repo.repo_type, repo.repo_id, commit)
        )
        facts: dict[str, Any] = dict(known or {})
        card_refused = False
        if need_card and "card" not in facts:
            try:
                facts["card"] = await self._read_card(repo, commit, caller)
            except Refused as exc:
                # The card itself is refused (say, its repo is denied): it cannot be read, and
                # that is not remembered, so a review of the card is seen next time.
                log.info("model_card_refused", repo_id=repo.repo_id, reason=exc.message)
                facts["card"] = {"present": False, "licenses": []}
                card_refused = True
        if need_date and facts.get("commit_ts") is None:
            facts["commit_ts"] = await self._commit_ts(repo, commit, caller)
        if facts != (known or {}) and not card_refused:
            await self.registry.write(
                lambda r: r.record_commit_facts(repo.repo_type, repo.repo_id, commit, facts)
            )
        card = None
        if need_card:
            card = ModelCard(bool(facts["card"]["present"]), tuple(facts["card"]["licenses"]))
        commit_ts = facts.get("commit_ts") if need_date else None
        return card, None if commit_ts is None else float(commit_ts)

    async def _read_card(self, repo: RepoRef, commit: str, caller: Caller) -> dict[str, Any]:
        readme = FileRef(repo, commit, "README.md")
        try:
            admission = await self.admit(readme, caller)
            ready = (
                admission if isinstance(admission, Ready) else await self.settle(admission, None)
            )
        except (EntryNotFound, UpstreamError) as exc:
            if isinstance(exc, UpstreamError) and exc.error_code != "EntryNotFound":
                raise
            return {"present": False, "licenses": []}
        assert ready is not None
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(None, _read_head, ready.blob_path, MAX_CARD_BYTES)
        return {"present": True, "licenses": list(card_licenses(text))}

    async def _commit_ts(self, repo: RepoRef, commit: str, caller: Caller) -> float | None:
        path = f"/api/{repo.repo_type.value}s/{repo.repo_id}/revision/{commit}"
        try:
            answer = await self.upstream.api("GET", path, caller)
            modified = json.loads(answer.body).get("lastModified")
            return datetime.fromisoformat(str(modified).replace("Z", "+00:00")).timestamp()
        except (AirlockError, ValueError, AttributeError) as exc:
            log.warning("commit_date_unknown", repo_id=repo.repo_id, commit=commit, error=str(exc))
            return None

    def refusal(self, decision: DecisionRow, file: FileRow) -> Blocked:
        """The refusal users see; the middleware appends the review page's URL."""
        reason = summarize([Reason.from_json(r) for r in decision.reasons])
        return Blocked(
            f"Airlock blocked {file.path} in {file.repo_id}@{file.commit_sha}: {reason}.",
            decision_id=decision.id,
            reasons=[reason],
            review_path=f"/ui/decisions/{decision.id}",
            at_commit=file.commit_sha,
            upstream_file=(file.etag, file.size_bytes),
        )

    # --- access to restricted repos ------------------------------------------------------------

    async def _learn_access(self, repo: RepoRef, caller: Caller) -> None:
        """Upstream just let this caller read a file of `repo`."""
        if caller.anonymous_upstream:
            await self.registry.write(
                lambda r: r.record_repo_public(repo.repo_type, repo.repo_id, True)
            )
        else:
            self.access.confirm(repo, caller)

    async def _check_access(self, file: FileRef, caller: Caller) -> None:
        """A cached file of a private or gated repo goes only to callers upstream lets in.
        Public is learned from an anonymous upstream success; anything else is restricted."""
        repo = file.repo
        public = await self.registry.read(lambda r: r.repo_public(repo.repo_type, repo.repo_id))
        if public or self.access.confirmed(repo, caller):
            return
        try:
            await self.upstream.file_meta(file, caller)
        except UpstreamUnavailable as exc:
            raise UpstreamUnavailable(
                f"Airlock cannot confirm your access to {repo.repo_id} while upstream is "
                f"unreachable ({exc.message})"
            ) from exc
        await self._learn_access(repo, caller)

    async def _offline(self, file: FileRef, caller: Caller) -> Ready:
        """Upstream is down: serve what was cleared before, marked as such; invent nothing."""
        commit = await self.cached_commit(file.repo, file.revision, stale_ok=True)
        ready = await self._ready(file.at(commit), caller) if commit else None
        if ready is None:
            raise UpstreamUnavailable(
                f"Airlock could not reach upstream and has no cleared copy of {file.path} in "
                f"{file.repo.repo_id}@{file.revision}"
            )
        await self._check_access(file.at(ready.file.commit_sha), caller)
        log.warning("served_offline", repo_id=file.repo.repo_id, path=file.path)
        return Ready(ready.file, ready.blob_path, OFFLINE_WARNING)

    # --- flights ---------------------------------------------------------------------------

    def _join_flight(self, file: FileRef, meta: UpstreamMeta, caller: Caller) -> Flight:
        flight = self.flights.get(meta.flight_key)
        if flight is not None:
            return flight
        staging = self.store.new_staging()
        flight = Flight(meta.flight_key, meta, Progress(meta.size_bytes, staging))
        flight.task = asyncio.create_task(self._fly(flight, file, caller))
        # Clients may give up; the flight goes on so their retry finds the file ready. Its
        # outcome is logged by _fly, so an unread exception is not an error here.
        flight.task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.flights[flight.key] = flight
        return flight

    async def _fly(self, flight: Flight, file: FileRef, caller: Caller) -> Cleared:
        meta = flight.meta
        started = time.monotonic()
        try:
            staged = await stage(
                meta,
                caller,
                upstream=self.upstream,
                settings=self.settings,
                progress=flight.progress,
                observe=self._release_point,
            )
            log.info(
                "upstream_fetched",
                repo_id=file.repo.repo_id,
                path=file.path,
                size_bytes=staged.size_bytes,
                sha256=staged.sha256,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
            problem = verify(staged, meta)
            if problem is not None:
                await self._quarantine_corrupt(file, staged, problem)
            return await self._judge(file, meta, staged, flight.progress, caller)
        except AirlockError as exc:
            self.store.discard(flight.progress.staging)
            self._remember_failure(flight.key, exc)
            raise
        except BaseException:
            self.store.discard(flight.progress.staging)
            raise
        finally:
            self.flights.pop(flight.key, None)
            flight.progress.notify()

    def _remember_failure(self, key: str, error: AirlockError) -> None:
        if isinstance(error, Blocked):
            return  # the registry remembers blocked blobs for good
        now = time.monotonic()
        self.failures = {k: v for k, v in self.failures.items() if v[0] > now}
        self.failures[key] = (now + self.settings.failure_cooldown_s, error)
        log.warning("fetch_failed", key=key, error=type(error).__name__, reason=error.message)

    async def _release_point(self, progress: Progress) -> None:
        """Let a safetensors file stream once its header is in and well formed. Decided once per
        flight; any other content stays held until it is verified and scanned."""
        if progress.release_decided or progress.bytes_done < safetensors.PREFIX_BYTES + 1:
            return
        if progress.header_length is None:
            with progress.staging.path.open("rb") as handle:
                length = safetensors.header_length(handle.read(safetensors.PREFIX_BYTES + 1))
            if length is None:
                progress.release_decided = True
                return
            progress.header_length = length
        if progress.bytes_done < safetensors.PREFIX_BYTES + progress.header_length:
            return
        progress.release_decided = True
        loop = asyncio.get_running_loop()
        findings = await loop.run_in_executor(
            None,
            _header_findings,
            progress.staging.path,
            progress.header_length,
            progress.size_bytes,
        )
        if not findings:
            progress.streamable = True
            progress.notify()

    async def _quarantine_corrupt(self, file: FileRef, staged: StagedBlob, problem: str) -> None:
        self.store.quarantine(staged.staging, staged.sha256)
        await self.registry.write(
            lambda r: r.record_blob(
                sha256=staged.sha256,
                git_sha1=staged.git_sha1,
                size_bytes=staged.size_bytes,
                state=BlobState.CORRUPT,
                format=None,
                reason=problem,
            )
        )
        log.error(
            "blob_quarantined",
            reason="integrity",
            repo_id=file.repo.repo_id,
            path=file.path,
            sha256=staged.sha256,
            problem=problem,
        )
        raise IntegrityMismatch(
            f"Airlock refused {file.path} in {file.repo.repo_id}@{file.revision}: {problem}. "
            "The bytes were quarantined and not served; the next request fetches again."
        )

    async def _judge(
        self,
        file: FileRef,
        meta: UpstreamMeta,
        staged: StagedBlob,
        progress: Progress,
        caller: Caller,
    ) -> Cleared:
        report = await self._scan(staged.staging.path, staged.size_bytes, staged.sha256, file.path)
        row = _file_row(file, meta, staged.sha256)
        decision = await self._decide(row, staged.sha256, report, caller)
        allowed = decision.verdict == Verdict.ALLOW
        state = BlobState.CLEARED if allowed else BlobState.BLOCKED
        if allowed:
            # Verified and allowed: streamed readers may send the last byte now, without waiting
            # for the commit's fsync (which only makes the cache copy crash-proof).
            progress.cleared = True
            progress.notify()
            # commit() fsyncs the whole file: keep that off the event loop.
            loop = asyncio.get_running_loop()
            blob_path = await loop.run_in_executor(
                None, self.store.commit, staged.staging, staged.sha256
            )
        else:
            self.store.quarantine(staged.staging, staged.sha256)
        reasons = [Reason.from_json(r) for r in decision.reasons]
        await self.registry.write(
            lambda r: r.record_blob(
                sha256=staged.sha256,
                git_sha1=staged.git_sha1,
                size_bytes=staged.size_bytes,
                state=state,
                format=report.format.value,
                reason=None if allowed else summarize(reasons),
                report=json.dumps(report.to_json()),
                scanner_version=self.scanner.version,
            )
        )
        await self.registry.write(lambda r: r.record_file(row))
        if not allowed:
            log.warning(
                "blob_quarantined",
                reason="policy",
                repo_id=file.repo.repo_id,
                path=file.path,
                sha256=staged.sha256,
                decision_id=decision.id,
            )
            self.hooks.quarantined(decision)
            raise self.refusal(decision, row)
        return Cleared(staged.sha256, staged.size_bytes, blob_path)

    async def _scan(self, path: Path, size_bytes: int, sha256: str, name: str) -> ScanReport:
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(None, self.scanner.scan, path, size_bytes, name)
        except Exception as exc:  # a scanner crash is a finding, never a pass
            log.exception("scan_failed", scanner=self.scanner.name, sha256=sha256)
            report = scanner_failure(self.scanner.name, exc)
        log.info(
            "scan_finished",
            sha256=sha256,
            scanner=report.scanner,
            format=report.format.value,
            findings=[f.rule for f in report.findings],
            duration_ms=report.duration_ms,
        )
        self.hooks.scanned(report)
        return report

    async def settle(self, fetching: Fetching, timeout_s: float | None) -> Ready | None:
        """Wait for a flight's outcome: Ready, None if `timeout_s` ran out, or the refusal."""
        cleared = await fetching.flight.wait(timeout_s)
        if cleared is None:
            return None
        row = _file_row(fetching.file, fetching.meta, cleared.sha256)
        return Ready(row, cleared.blob_path)

    async def close(self) -> None:
        tasks = [f.task for f in self.flights.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _header_findings(path: Path, header_length: int, size_bytes: int) -> list[Finding]:
    with path.open("rb") as handle:
        handle.seek(safetensors.PREFIX_BYTES)
        header = handle.read(header_length)
    return safetensors.check_header(header, size_bytes)


def _file_row(file: FileRef, meta: UpstreamMeta, sha256: str) -> FileRow:
    return FileRow(
        repo_type=file.repo.repo_type.value,
        repo_id=file.repo.repo_id,
        commit_sha=file.revision,
        path=file.path,
        sha256=sha256,
        etag=meta.etag,
        lfs=meta.lfs,
        size_bytes=meta.size_bytes,
    )


MAX_CARD_BYTES = 1024 * 1024


def _read_head(path: Path, limit: int) -> str:
    with path.open("rb") as handle:
        return handle.read(limit).decode("utf-8", "replace")
