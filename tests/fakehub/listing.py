"""JSON shapes of the hub API: repo info, tree/paths-info entries, refs, commits."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from .model import Commit, FileObj, Repo, format_date

Json = dict[str, Any]


def tree_paths(commit: Commit, path: str, recursive: bool) -> list[str] | None:
    """Paths listed under directory ``path`` (``""`` = root); None if it is not a directory."""
    dirs = commit.directories()
    if path and path not in dirs:
        return None
    prefix = path + "/" if path else ""
    candidates = [p for p in (*commit.files, *dirs) if p.startswith(prefix)]
    if not recursive:
        candidates = [p for p in candidates if "/" not in p[len(prefix) :]]
    return sorted(candidates)


def entry_json(repo: Repo, commit: Commit, path: str, *, expand: bool) -> Json:
    """A tree / paths-info entry for a file or directory that exists in ``commit``."""
    found: FileObj | None = commit.files.get(path)
    out: Json
    if found is None:
        out = {"type": "directory", "oid": commit.dir_oid(path), "size": 0, "path": path}
    else:
        out = {"type": "file", "oid": found.oid, "size": found.size, "path": path}
        if found.lfs and found.pointer is not None:
            out["lfs"] = {
                "oid": found.blob.sha256,
                "size": found.size,
                "pointerSize": len(found.pointer),
            }
        if found.xet_hash is not None:
            out["xetHash"] = found.xet_hash
    if expand:
        last = repo.last_commit(commit.sha, path)
        out["lastCommit"] = {"id": last.sha, "title": last.title, "date": format_date(last.date)}
        if found is not None:
            out["securityFileStatus"] = security_status(path)
    return out


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".joblib")


def security_status(path: str) -> Json:
    """The scan verdict shape; the real client indexes ``avScan`` and ``pickleImportScan``."""
    pickle_scan: Json | None = None
    if path.lower().endswith(PICKLE_SUFFIXES):
        pickle_scan = {"highestSafetyLevel": "innocuous", "imports": []}
    return {
        "status": "safe",
        "avScan": {"virusFound": False, "virusNames": None},
        "pickleImportScan": pickle_scan,
    }


def repo_info_json(repo: Repo, commit: Commit, *, blobs: bool) -> Json:
    siblings: list[Json] = []
    for path in sorted(commit.files):
        sibling: Json = {"rfilename": path}
        if blobs:
            found = commit.files[path]
            sibling["blobId"] = found.oid
            sibling["size"] = found.size
            if found.lfs and found.pointer is not None:
                sibling["lfs"] = {
                    "sha256": found.blob.sha256,
                    "size": found.size,
                    "pointerSize": len(found.pointer),
                }
        siblings.append(sibling)
    author = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
    info: Json = {
        "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "author": author,
        "sha": commit.sha,
        "lastModified": format_date(commit.date),
        "createdAt": format_date(repo.created),
        "private": repo.private,
        "gated": "auto" if repo.gated else False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": sum(f.size for f in commit.files.values()),
    }
    if repo.repo_type == "model":
        info["modelId"] = repo.repo_id
    return info


def refs_json(repo: Repo, *, include_prs: bool) -> Json:
    out: Json = {
        "branches": [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
            for name, sha in sorted(repo.branches.items())
        ],
        "tags": [
            {"name": name, "ref": f"refs/tags/{name}", "targetCommit": sha}
            for name, sha in sorted(repo.tags.items())
        ],
        "converts": [],
    }
    if include_prs:
        out["pullRequests"] = [
            {"name": f"refs/pr/{num}", "ref": f"refs/pr/{num}", "targetCommit": sha}
            for num, sha in sorted(repo.prs.items())
        ]
    return out


def commit_json(commit: Commit) -> Json:
    return {
        "id": commit.sha,
        "title": commit.title,
        "message": commit.message,
        "authors": [],
        "date": format_date(commit.date),
    }


def encode_cursor(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    try:
        value = json.loads(base64.b64decode(cursor.encode(), validate=True))
        offset = value["offset"]
    except (ValueError, KeyError, TypeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 else None
