"""The registry: every SQL statement Airlock runs, over SQLite through sqlite-utils.

`Registry` is synchronous and owns one connection. `AsyncRegistry` is what the event loop uses:
writes go through one dedicated writer thread, reads through a small pool of reader threads with
their own connections (datasette's pattern), so SQLite is never called on the event loop.
The schema is versioned by `PRAGMA user_version`; `MIGRATIONS[n]` takes version n to n+1.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlite_utils import Database

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE repos (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        public INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id)
    );
    CREATE TABLE revisions (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        resolved_at REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, revision)
    );
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        git_sha1 TEXT,
        size_bytes INTEGER NOT NULL,
        state TEXT NOT NULL,
        format TEXT,
        reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX blobs_git_sha1 ON blobs (git_sha1);
    CREATE TABLE files (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL REFERENCES blobs (sha256),
        etag TEXT NOT NULL,
        lfs INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, commit_sha, path)
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        path TEXT NOT NULL,
        verdict TEXT NOT NULL,
        reasons TEXT NOT NULL,
        scanner TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX decisions_blob ON decisions (sha256);
    CREATE TABLE api_cache (
        key TEXT PRIMARY KEY,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        fetched_at REAL NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        request_id TEXT NOT NULL,
        client_addr TEXT,
        token_fp TEXT,
        method TEXT NOT NULL,
        url_path TEXT NOT NULL,
        repo_type TEXT,
        repo_id TEXT,
        revision TEXT,
        commit_sha TEXT,
        path TEXT,
        status INTEGER NOT NULL,
        bytes_sent INTEGER NOT NULL,
        verdict TEXT,
        duration_ms REAL NOT NULL
    );
    CREATE INDEX audit_ts ON audit (ts);
    """,
    # Policies, decisions per file, reviews, and the event log.
    """
    ALTER TABLE blobs ADD COLUMN report TEXT;
    ALTER TABLE blobs ADD COLUMN scanner_version TEXT;
    ALTER TABLE decisions ADD COLUMN policy_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE decisions ADD COLUMN review_state TEXT NOT NULL DEFAULT 'none';
    ALTER TABLE decisions ADD COLUMN format TEXT;
    ALTER TABLE decisions ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE decisions ADD COLUMN audit_only INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE decisions ADD COLUMN scanner_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE decisions ADD COLUMN updated_at REAL NOT NULL DEFAULT 0;
    UPDATE decisions SET updated_at = created_at;
    DELETE FROM decisions WHERE id NOT IN (
        SELECT max(id) FROM decisions GROUP BY repo_type, repo_id, commit_sha, path, sha256
    );
    CREATE UNIQUE INDEX decisions_subject
        ON decisions (repo_type, repo_id, commit_sha, path, sha256);
    CREATE INDEX decisions_verdict ON decisions (verdict, updated_at);
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        decision_id INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        action TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        reason TEXT NOT NULL,
        ts REAL NOT NULL
    );
    CREATE INDEX reviews_subject ON reviews (sha256, repo_type, repo_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        decision_id INTEGER,
        summary TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE TABLE commit_facts (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        facts TEXT NOT NULL,
        fetched_at REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, commit_sha)
    );
    """,
)


class BlobState(StrEnum):
    # Where verified bytes live. Whether a file may be served is its decision's business.
    CLEARED = "cleared"  # verified, scanned, allowed for some file: in blobs/
    BLOCKED = "blocked"  # verified, scanned, allowed nowhere yet: evidence in quarantine/
    CORRUPT = "corrupt"  # did not match upstream's published size or hash: evidence only


@dataclass(frozen=True)
class DecisionRow:
    id: int
    sha256: str
    repo_type: str
    repo_id: str
    commit_sha: str
    path: str
    verdict: str
    reasons: list[Any]
    scanner: str
    scanner_version: str
    policy_version: str
    review_state: str
    format: str | None
    size_bytes: int
    audit_only: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ReviewRow:
    id: int
    decision_id: int
    sha256: str
    repo_type: str
    repo_id: str
    action: str
    reviewer: str
    reason: str
    ts: float


@dataclass(frozen=True)
class BlobRow:
    sha256: str
    git_sha1: str | None
    size_bytes: int
    state: BlobState
    format: str | None
    reason: str | None
    report: str | None = None  # the scan report, JSON
    scanner_version: str | None = None


@dataclass(frozen=True)
class FileRow:
    repo_type: str
    repo_id: str
    commit_sha: str
    path: str
    sha256: str
    etag: str
    lfs: bool
    size_bytes: int


@dataclass(frozen=True)
class AuditRow:
    ts: float
    request_id: str
    client_addr: str | None
    token_fp: str | None
    method: str
    url_path: str
    repo_type: str | None
    repo_id: str | None
    revision: str | None
    commit_sha: str | None
    path: str | None
    status: int
    bytes_sent: int
    verdict: str | None
    duration_ms: float


class Registry:
    """All SQL. Synchronous; one instance per thread."""

    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self.db = Database(conn)

    def migrate(self) -> int:
        version: int = self.db.execute("PRAGMA user_version").fetchone()[0]
        for index in range(version, len(MIGRATIONS)):
            with self.db.conn:
                self.db.conn.executescript(
                    "BEGIN;" + MIGRATIONS[index] + f"PRAGMA user_version={index + 1};COMMIT;"
                )
        return len(MIGRATIONS)

    def close(self) -> None:
        self.db.conn.close()

    # --- revisions and repos --------------------------------------------------------------

    def revision(self, repo_type: str, repo_id: str, revision: str) -> tuple[str, float] | None:
        for row in self.db.query(
            "SELECT commit_sha, resolved_at FROM revisions"
            " WHERE repo_type = ? AND repo_id = ? AND revision = ?",
            (repo_type, repo_id, revision),
        ):
            return str(row["commit_sha"]), float(row["resolved_at"])
        return None

    def record_revision(self, repo_type: str, repo_id: str, revision: str, commit: str) -> None:
        self.db.table("revisions").upsert(
            {
                "repo_type": repo_type,
                "repo_id": repo_id,
                "revision": revision,
                "commit_sha": commit,
                "resolved_at": time.time(),
            },
            pk=("repo_type", "repo_id", "revision"),
        )

    def repo_public(self, repo_type: str, repo_id: str) -> bool:
        for row in self.db.query(
            "SELECT public FROM repos WHERE repo_type = ? AND repo_id = ?", (repo_type, repo_id)
        ):
            return bool(row["public"])
        return False

    def record_repo_public(self, repo_type: str, repo_id: str, public: bool) -> None:
        self.db.table("repos").upsert(
            {
                "repo_type": repo_type,
                "repo_id": repo_id,
                "public": int(public),
                "updated_at": time.time(),
            },
            pk=("repo_type", "repo_id"),
        )

    # --- blobs and files ------------------------------------------------------------------

    def blob(self, sha256: str) -> BlobRow | None:
        for row in self.db.query("SELECT * FROM blobs WHERE sha256 = ?", (sha256,)):
            return _blob_row(row)
        return None

    def blob_by_git_sha1(self, git_sha1: str) -> BlobRow | None:
        for row in self.db.query(
            "SELECT * FROM blobs WHERE git_sha1 = ? ORDER BY state = 'cleared' DESC LIMIT 1",
            (git_sha1,),
        ):
            return _blob_row(row)
        return None

    def record_blob(
        self,
        *,
        sha256: str,
        git_sha1: str | None,
        size_bytes: int,
        state: BlobState,
        format: str | None,
        reason: str | None,
        report: str | None = None,
        scanner_version: str | None = None,
    ) -> None:
        now = time.time()
        self.db.execute(
            """
            INSERT INTO blobs (sha256, git_sha1, size_bytes, state, format, reason,
                               report, scanner_version, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (sha256) DO UPDATE SET
                git_sha1 = coalesce(excluded.git_sha1, blobs.git_sha1),
                size_bytes = excluded.size_bytes,
                state = excluded.state,
                format = excluded.format,
                reason = excluded.reason,
                report = coalesce(excluded.report, blobs.report),
                scanner_version = coalesce(excluded.scanner_version, blobs.scanner_version),
                updated_at = excluded.updated_at
            """,
            (
                sha256,
                git_sha1,
                size_bytes,
                state.value,
                format,
                reason,
                report,
                scanner_version,
                now,
                now,
            ),
        )

    def set_blob_state(self, sha256: str, state: BlobState) -> None:
        self.db.execute(
            "UPDATE blobs SET state = ?, updated_at = ? WHERE sha256 = ?",
            (state.value, time.time(), sha256),
        )

    def file(self, repo_type: str, repo_id: str, commit: str, path: str) -> FileRow | None:
        for row in self.db.query(
            "SELECT * FROM files WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?"
            " AND path = ?",
            (repo_type, repo_id, commit, path),
        ):
            return FileRow(
                repo_type=row["repo_type"],
                repo_id=row["repo_id"],
                commit_sha=row["commit_sha"],
                path=row["path"],
                sha256=row["sha256"],
                etag=row["etag"],
                lfs=bool(row["lfs"]),
                size_bytes=int(row["size_bytes"]),
            )
        return None

    def record_file(self, row: FileRow) -> None:
        record = asdict(row)
        record["lfs"] = int(row.lfs)
        record["created_at"] = time.time()
        self.db.table("files").upsert(record, pk=("repo_type", "repo_id", "commit_sha", "path"))

    def record_decision(
        self,
        *,
        sha256: str,
        repo_type: str,
        repo_id: str,
        commit: str,
        path: str,
        verdict: str,
        reasons: list[dict[str, Any]],
        scanner: str,
        scanner_version: str,
        policy_version: str,
        format: str | None,
        size_bytes: int,
        audit_only: bool,
    ) -> tuple[DecisionRow, bool]:
        """Record the decision for one file; returns it as stored, and whether it is new or
        changed its verdict (an event is logged for those)."""
        now = time.time()
        before = self.decision_for(repo_type, repo_id, commit, path, sha256)
        self.db.execute(
            """
            INSERT INTO decisions (sha256, repo_type, repo_id, commit_sha, path, verdict,
                                   reasons, scanner, scanner_version, policy_version, format,
                                   size_bytes, audit_only, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (repo_type, repo_id, commit_sha, path, sha256) DO UPDATE SET
                verdict = excluded.verdict,
                reasons = excluded.reasons,
                scanner = excluded.scanner,
                scanner_version = excluded.scanner_version,
                policy_version = excluded.policy_version,
                format = excluded.format,
                size_bytes = excluded.size_bytes,
                audit_only = excluded.audit_only,
                updated_at = excluded.updated_at
            """,
            (
                sha256,
                repo_type,
                repo_id,
                commit,
                path,
                verdict,
                json.dumps(reasons),
                scanner,
                scanner_version,
                policy_version,
                format,
                size_bytes,
                int(audit_only),
                now,
                now,
            ),
        )
        after = self.decision_for(repo_type, repo_id, commit, path, sha256)
        assert after is not None
        changed = before is None or before.verdict != verdict
        if changed:
            self.record_event(
                "decision",
                actor="policy",
                decision_id=after.id,
                summary=f"{verdict}: {path} in {repo_id}@{commit[:12]}",
                data={"verdict": verdict, "policy_version": policy_version},
            )
        return after, changed

    def decision_for(
        self, repo_type: str, repo_id: str, commit: str, path: str, sha256: str
    ) -> DecisionRow | None:
        for row in self.db.query(
            "SELECT * FROM decisions WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?"
            " AND path = ? AND sha256 = ?",
            (repo_type, repo_id, commit, path, sha256),
        ):
            return _decision_row(row)
        return None

    def decision(self, decision_id: int) -> DecisionRow | None:
        for row in self.db.query("SELECT * FROM decisions WHERE id = ?", (decision_id,)):
            return _decision_row(row)
        return None

    def decisions(
        self,
        *,
        verdicts: tuple[str, ...] = (),
        repo: str | None = None,
        format: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionRow]:
        where, args = ["1"], list[Any]()
        if verdicts:
            where.append(f"verdict IN ({', '.join('?' * len(verdicts))})")
            args.extend(verdicts)
        if repo:
            where.append("instr(lower(repo_id), lower(?)) > 0")
            args.append(repo)
        if format:
            where.append("format = ?")
            args.append(format)
        sql = (
            f"SELECT * FROM decisions WHERE {' AND '.join(where)}"  # noqa: S608
            " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        return [_decision_row(row) for row in self.db.query(sql, [*args, limit, offset])]

    def decision_ids(self) -> list[int]:
        return [int(row["id"]) for row in self.db.query("SELECT id FROM decisions ORDER BY id")]

    def decisions_for_blob(self, sha256: str) -> list[DecisionRow]:
        return [
            _decision_row(row)
            for row in self.db.query("SELECT * FROM decisions WHERE sha256 = ?", (sha256,))
        ]

    # --- reviews and events ---------------------------------------------------------------

    def record_review(
        self, decision: DecisionRow, *, action: str, reviewer: str, reason: str
    ) -> int:
        """A review applies to the exact bytes in this repo, whatever the commit or path."""
        table = self.db.table("reviews").insert(
            {
                "decision_id": decision.id,
                "sha256": decision.sha256,
                "repo_type": decision.repo_type,
                "repo_id": decision.repo_id,
                "action": action,
                "reviewer": reviewer,
                "reason": reason,
                "ts": time.time(),
            }
        )
        state = "approved" if action == "approve" else "denied"
        self.db.execute(
            "UPDATE decisions SET review_state = ? WHERE sha256 = ? AND repo_type = ?"
            " AND repo_id = ?",
            (state, decision.sha256, decision.repo_type, decision.repo_id),
        )
        self.record_event(
            "review",
            actor=reviewer,
            decision_id=decision.id,
            summary=f"{action}: {decision.path} in {decision.repo_id} ({reason})",
            data={"action": action, "reason": reason, "sha256": decision.sha256},
        )
        assert table.last_pk is not None
        return int(table.last_pk)

    def latest_review(self, sha256: str, repo_type: str, repo_id: str) -> ReviewRow | None:
        for row in self.db.query(
            "SELECT * FROM reviews WHERE sha256 = ? AND repo_type = ? AND repo_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (sha256, repo_type, repo_id),
        ):
            return ReviewRow(**row)
        return None

    def reviews_for(self, sha256: str, repo_type: str, repo_id: str) -> list[ReviewRow]:
        return [
            ReviewRow(**row)
            for row in self.db.query(
                "SELECT * FROM reviews WHERE sha256 = ? AND repo_type = ? AND repo_id = ?"
                " ORDER BY id",
                (sha256, repo_type, repo_id),
            )
        ]

    def record_event(
        self,
        kind: str,
        *,
        actor: str | None,
        summary: str,
        data: dict[str, Any],
        decision_id: int | None = None,
    ) -> None:
        self.db.table("events").insert(
            {
                "ts": time.time(),
                "kind": kind,
                "actor": actor,
                "decision_id": decision_id,
                "summary": summary,
                "data": json.dumps(data),
            }
        )

    def events_page(
        self, since_ts: float, limit: int, before_ts: float | None
    ) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM events WHERE ts >= ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT ?",
                (since_ts, before_ts if before_ts is not None else float("inf"), limit),
            )
        )

    def audit_page(
        self, since_ts: float, limit: int, before_ts: float | None
    ) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM audit WHERE ts >= ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT ?",
                (since_ts, before_ts if before_ts is not None else float("inf"), limit),
            )
        )

    def requests_for(
        self, repo_type: str, repo_id: str, commit: str, path: str, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM audit WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?"
                " AND path = ? ORDER BY id DESC LIMIT ?",
                (repo_type, repo_id, commit, path, limit),
            )
        )

    def decision_counts_by_day(self, since_ts: float) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT date(created_at, 'unixepoch') AS day, verdict, coalesce(format, '?')"
                " AS format, count(*) AS n FROM decisions WHERE created_at >= ?"
                " GROUP BY day, verdict, format",
                (since_ts,),
            )
        )

    # --- facts about commits ----------------------------------------------------------------

    def commit_facts(self, repo_type: str, repo_id: str, commit: str) -> dict[str, Any] | None:
        for row in self.db.query(
            "SELECT facts FROM commit_facts WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?",
            (repo_type, repo_id, commit),
        ):
            facts: dict[str, Any] = json.loads(row["facts"])
            return facts
        return None

    def record_commit_facts(
        self, repo_type: str, repo_id: str, commit: str, facts: dict[str, Any]
    ) -> None:
        self.db.table("commit_facts").upsert(
            {
                "repo_type": repo_type,
                "repo_id": repo_id,
                "commit_sha": commit,
                "facts": json.dumps(facts),
                "fetched_at": time.time(),
            },
            pk=("repo_type", "repo_id", "commit_sha"),
        )

    # --- cached API answers ---------------------------------------------------------------

    def api_answer(self, key: str) -> tuple[dict[str, str], bytes, float] | None:
        for row in self.db.query(
            "SELECT headers, body, fetched_at FROM api_cache WHERE key = ?", (key,)
        ):
            return json.loads(row["headers"]), bytes(row["body"]), float(row["fetched_at"])
        return None

    def record_api_answer(
        self, key: str, repo_type: str, repo_id: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.db.table("api_cache").upsert(
            {
                "key": key,
                "repo_type": repo_type,
                "repo_id": repo_id,
                "headers": json.dumps(headers),
                "body": body,
                "fetched_at": time.time(),
            },
            pk="key",
        )

    # --- audit ----------------------------------------------------------------------------

    def record_audit(self, row: AuditRow) -> None:
        self.db.table("audit").insert(asdict(row))

    def audit_rows(self, *, since_ts: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM audit WHERE ts >= ? ORDER BY id LIMIT ?", (since_ts, limit)
            )
        )

    def counts(self) -> dict[str, int]:
        return {
            table: int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in (
                "repos",
                "revisions",
                "blobs",
                "files",
                "decisions",
                "reviews",
                "events",
                "audit",
            )
        }


def _blob_row(row: dict[str, Any]) -> BlobRow:
    return BlobRow(
        sha256=row["sha256"],
        git_sha1=row["git_sha1"],
        size_bytes=int(row["size_bytes"]),
        state=BlobState(row["state"]),
        format=row["format"],
        reason=row["reason"],
        report=row.get("report"),
        scanner_version=row.get("scanner_version"),
    )


def _decision_row(row: dict[str, Any]) -> DecisionRow:
    return DecisionRow(
        id=int(row["id"]),
        sha256=row["sha256"],
        repo_type=row["repo_type"],
        repo_id=row["repo_id"],
        commit_sha=row["commit_sha"],
        path=row["path"],
        verdict=row["verdict"],
        reasons=json.loads(row["reasons"]),
        scanner=row["scanner"],
        scanner_version=row["scanner_version"],
        policy_version=row["policy_version"],
        review_state=row["review_state"],
        format=row["format"],
        size_bytes=int(row["size_bytes"]),
        audit_only=bool(row["audit_only"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


class AsyncRegistry:
    """The event loop's door to the registry: one writer thread, a pool of reader threads."""

    def __init__(self, path: Path, *, readers: int = 2) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-writer")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="registry-read")
        self._local = threading.local()
        self._opened: list[Registry] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        """Create or migrate the schema (synchronously, before serving)."""
        path_registry = Registry(self.path)
        try:
            path_registry.migrate()
        finally:
            path_registry.close()

    def _registry(self) -> Registry:
        registry: Registry | None = getattr(self._local, "registry", None)
        if registry is None:
            registry = Registry(self.path)
            self._local.registry = registry
            with self._lock:
                self._opened.append(registry)
        return registry

    async def read[T](self, call: Callable[[Registry], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: call(self._registry()))

    async def write[T](self, call: Callable[[Registry], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: call(self._registry()))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for registry in self._opened:
                registry.close()
            self._opened.clear()
