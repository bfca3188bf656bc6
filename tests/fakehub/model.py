"""Repositories, commits, refs and the hub-wide state the server reads under one lock."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from .content import (
    GITATTRIBUTES,
    GITATTRIBUTES_PATH,
    SMALL_FILE_LIMIT,
    Blob,
    blob_from_bytes,
    git_blob_sha1,
    is_lfs_name,
    lfs_pointer,
)

RepoType = Literal["model", "dataset"]
ResolveStyle = Literal["direct", "resolve-cache"]
REPO_TYPES: tuple[RepoType, ...] = ("model", "dataset")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
PR_RE = re.compile(r"^refs/pr/(\d+)$")
BASE_DATE = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FileObj:
    """One file of a commit, with the identities the hub advertises for it."""

    path: str
    blob: Blob
    lfs: bool
    pointer: bytes | None  # LFS pointer text, for LFS files
    oid: str  # git sha1 of the object stored in git (content, or pointer for LFS)
    xet_hash: str | None

    @property
    def size(self) -> int:
        return self.blob.size


def make_file(path: str, blob: Blob, *, force_lfs: bool, xet: bool) -> FileObj:
    lfs = path != GITATTRIBUTES_PATH and (
        force_lfs or blob.size > SMALL_FILE_LIMIT or is_lfs_name(path) or blob.virtual
    )
    if not lfs:
        return FileObj(path=path, blob=blob, lfs=False, pointer=None, oid=blob.sha1, xet_hash=None)
    pointer = lfs_pointer(blob.sha256, blob.size)
    xet_hash = hashlib.sha256(b"xet-merkle:" + blob.sha256.encode()).hexdigest() if xet else None
    return FileObj(
        path=path,
        blob=blob,
        lfs=True,
        pointer=pointer,
        oid=git_blob_sha1(pointer),
        xet_hash=xet_hash,
    )


@dataclass(frozen=True)
class Commit:
    sha: str
    parent: str | None
    files: Mapping[str, FileObj]
    title: str
    date: datetime

    @property
    def message(self) -> str:
        return self.title

    def directories(self) -> set[str]:
        dirs: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return dirs

    def dir_oid(self, dirpath: str) -> str:
        """A deterministic 40-hex tree id derived from everything under ``dirpath``."""
        prefix = dirpath + "/" if dirpath else ""
        digest = hashlib.sha1(b"tree\0")
        for path in sorted(p for p in self.files if p.startswith(prefix)):
            digest.update(f"{path[len(prefix) :]}\0{self.files[path].oid}\n".encode())
        return digest.hexdigest()

    def signature(self, path: str) -> str | None:
        """What identifies ``path`` (file or directory) in this commit; None if absent."""
        found = self.files.get(path)
        if found is not None:
            return "f" + found.oid
        if path == "" or path in self.directories():
            return "d" + self.dir_oid(path)
        return None


def format_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Repo:
    repo_id: str
    repo_type: RepoType
    private_token: str | None
    gated_tokens: frozenset[str] | None
    xet: bool
    resolve_style: ResolveStyle
    created: datetime
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)

    @property
    def private(self) -> bool:
        return self.private_token is not None

    @property
    def gated(self) -> bool:
        return self.gated_tokens is not None

    def resolve(self, rev: str) -> str | None:
        """Resolve a branch, tag, refs/... name or full commit sha to a commit sha."""
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if rev.startswith("refs/heads/") and rev[11:] in self.branches:
            return self.branches[rev[11:]]
        if rev.startswith("refs/tags/") and rev[10:] in self.tags:
            return self.tags[rev[10:]]
        match = PR_RE.match(rev)
        if match is not None:
            return self.prs.get(int(match.group(1)))
        if SHA_RE.match(rev) and rev in self.commits:
            return rev
        return None

    def history(self, sha: str) -> list[Commit]:
        """Commits reachable from ``sha``, newest first."""
        out: list[Commit] = []
        current: str | None = sha
        while current is not None:
            commit = self.commits[current]
            out.append(commit)
            current = commit.parent
        return out

    def last_commit(self, sha: str, path: str) -> Commit:
        """The newest commit reachable from ``sha`` that changed ``path``."""
        chain = self.history(sha)
        for commit, parent in zip(chain, [*chain[1:], None], strict=True):
            if parent is None or commit.signature(path) != parent.signature(path):
                return commit
        return chain[-1]


class HubState:
    """All repos plus indexes; every access goes through ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.renames: dict[tuple[str, str], str] = {}
        self.by_sha256: dict[str, Blob] = {}
        self.by_xet: dict[str, Blob] = {}
        self.owners: dict[str, set[tuple[str, str, str]]] = {}  # sha256 -> {(type, id, path)}
        self._commit_counter = 0

    # --- lookups (caller holds the lock) ---------------------------------------------
    def find(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def get(self, repo_type: str, repo_id: str) -> Repo:
        """Find a repo following renames; raise KeyError if unknown."""
        seen: set[str] = set()
        while (repo_type, repo_id) not in self.repos:
            target = self.renames.get((repo_type, repo_id))
            if target is None or repo_id in seen:
                raise KeyError(f"unknown {repo_type} repo {repo_id}")
            seen.add(repo_id)
            repo_id = target
        return self.repos[(repo_type, repo_id)]

    # --- mutations (caller holds the lock) -------------------------------------------
    def create_repo(
        self,
        repo_id: str,
        repo_type: RepoType,
        *,
        private_token: str | None,
        gated_tokens: Iterable[str] | None,
        xet: bool,
        resolve_style: ResolveStyle,
    ) -> Repo:
        if repo_type not in REPO_TYPES:
            raise ValueError(f"unsupported repo_type {repo_type!r}")
        if resolve_style not in ("direct", "resolve-cache"):
            raise ValueError(f"unsupported resolve_style {resolve_style!r}")
        key = (repo_type, repo_id)
        if key in self.repos:
            raise ValueError(f"{repo_type} repo {repo_id} already exists")
        self.renames.pop(key, None)  # a new repo takes over a redirected old name
        repo = Repo(
            repo_id=repo_id,
            repo_type=repo_type,
            private_token=private_token,
            gated_tokens=frozenset(gated_tokens) if gated_tokens is not None else None,
            xet=xet,
            resolve_style=resolve_style,
            created=self._next_date(),
        )
        self.repos[key] = repo
        gitattributes = {GITATTRIBUTES_PATH: blob_from_bytes(GITATTRIBUTES)}
        sha = self.add_commit(repo, None, gitattributes, (), "initial commit")
        repo.branches["main"] = sha
        return repo

    def add_commit(
        self,
        repo: Repo,
        parent: str | None,
        blobs: Mapping[str, Blob],
        delete: Iterable[str],
        title: str,
        lfs_paths: Iterable[str] = (),
    ) -> str:
        """Create a commit on top of ``parent``; returns its sha (refs are not moved)."""
        repo.lfs_paths.update(lfs_paths)
        files = dict(repo.commits[parent].files) if parent is not None else {}
        for path in delete:
            if files.pop(path, None) is None:
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise KeyError(f"cannot delete {path!r}: not in the repo")
                for p in doomed:
                    del files[p]
        for path, blob in blobs.items():
            clean = path.strip("/")
            if not clean or "//" in clean or any(p in (".", "..") for p in clean.split("/")):
                raise ValueError(f"invalid path {path!r}")
            entry = make_file(clean, blob, force_lfs=clean in repo.lfs_paths, xet=repo.xet)
            files[clean] = entry
            self._index(repo, entry)
        when = self._next_date()
        digest = hashlib.sha1(b"commit\0")
        digest.update(f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{title}\n".encode())
        digest.update(f"{format_date(when)}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{files[path].oid}\n".encode())
        sha = digest.hexdigest()
        repo.commits[sha] = Commit(sha=sha, parent=parent, files=files, title=title, date=when)
        return sha

    def _index(self, repo: Repo, entry: FileObj) -> None:
        if not entry.lfs:
            return
        self.by_sha256[entry.blob.sha256] = entry.blob
        owner = (repo.repo_type, repo.repo_id, entry.path)
        self.owners.setdefault(entry.blob.sha256, set()).add(owner)
        if entry.xet_hash is not None:
            self.by_xet[entry.xet_hash] = entry.blob

    def rename(self, repo_type: str, old_id: str, new_id: str) -> None:
        """Move ``old_id`` to ``new_id``; or, if only ``new_id`` exists, alias the old name."""
        old_key, new_key = (repo_type, old_id), (repo_type, new_id)
        if old_key in self.repos and new_key in self.repos:
            raise ValueError(f"both {old_id} and {new_id} exist")
        if old_key in self.repos:
            repo = self.repos.pop(old_key)
            repo.repo_id = new_id
            self.repos[new_key] = repo
            for owners in self.owners.values():
                for owner in [o for o in owners if o[:2] == old_key]:
                    owners.discard(owner)
                    owners.add((repo_type, new_id, owner[2]))
        elif new_key not in self.repos:
            raise KeyError(f"unknown {repo_type} repo {old_id}")
        self.renames.pop(new_key, None)
        for key, target in list(self.renames.items()):
            if key[0] == repo_type and target == old_id:
                self.renames[key] = new_id
        self.renames[old_key] = new_id

    def _next_date(self) -> datetime:
        self._commit_counter += 1
        return BASE_DATE + timedelta(minutes=self._commit_counter)
