"""Locating a repo from a raw URL path, renames, and private/gated access checks."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from .context import Ctx
from .httputil import bearer_token, gated_error, repo_not_found, request_id
from .model import SHA_RE, Repo

TYPE_BY_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
API_ACTIONS = frozenset(
    {"revision", "tree", "paths-info", "refs", "commits", "xet-read-token", "preupload", "commit"}
)


@dataclass(frozen=True)
class RepoRef:
    """A repo named in a raw URL path: ``prefix + repo_id + rest``."""

    repo_type: str
    repo_id: str
    prefix: str  # raw path before the repo id
    rest: list[str]  # raw segments after the repo id
    query: str

    def with_id(self, repo_id: str) -> str:
        tail = "/".join(self.rest)
        location = self.prefix + repo_id + ("/" + tail if self.rest else "")
        return location + ("?" + self.query if self.query else "")


def parse_resolve(path: str, query: str) -> RepoRef | None:
    """``/[datasets/]{repo}/resolve/{rev}/{file...}``; rest = [rev, *file segments]."""
    segs = path.lstrip("/").split("/")
    repo_type, prefix = "model", "/"
    if segs and segs[0] in ("datasets", "spaces"):
        repo_type, prefix = TYPE_BY_PLURAL[segs[0]], f"/{segs[0]}/"
        segs = segs[1:]
    for width in (2, 1):
        if len(segs) >= width + 3 and segs[width] == "resolve" and all(segs[:width]):
            repo_id = "/".join(unquote(s) for s in segs[:width])
            return RepoRef(repo_type, repo_id, prefix, segs[width:], query)
    return None


def parse_api_repo(ctx: Ctx, segs: list[str], query: str) -> RepoRef | None:
    """``segs`` = path after ``/api/``: ``{models|datasets}/{repo}[/{action}/...]``."""
    if len(segs) < 2 or segs[0] not in TYPE_BY_PLURAL or not segs[1]:
        return None
    repo_type, prefix = TYPE_BY_PLURAL[segs[0]], f"/api/{segs[0]}/"
    body = segs[1:]
    two = "/".join(unquote(s) for s in body[:2]) if len(body) >= 2 else None
    one = unquote(body[0])
    with ctx.state.lock:
        known = {
            rid
            for rid in (one, two)
            if rid is not None
            and ((repo_type, rid) in ctx.state.repos or (repo_type, rid) in ctx.state.renames)
        }
    if two is not None and (two in known or (one not in known and body[1] not in API_ACTIONS)):
        return RepoRef(repo_type, two, prefix, body[2:], query)
    return RepoRef(repo_type, one, prefix, body[1:], query)


def parse_resolve_cache(segs: list[str], query: str) -> RepoRef | None:
    """``segs`` after ``/api/resolve-cache/``: ``{type}s/{repo}/{sha}/{file...}``.

    rest = [sha, *file segments].
    """
    if len(segs) < 4 or segs[0] not in TYPE_BY_PLURAL:
        return None
    repo_type = TYPE_BY_PLURAL[segs[0]]
    for width in (2, 1):
        if len(segs) >= width + 3 and SHA_RE.match(segs[width + 1]):
            repo_id = "/".join(unquote(s) for s in segs[1 : width + 1])
            prefix = f"/api/resolve-cache/{segs[0]}/"
            return RepoRef(repo_type, repo_id, prefix, segs[width + 1 :], query)
    return None


def open_repo(ctx: Ctx, request: web.BaseRequest, ref: RepoRef) -> Repo | web.Response:
    """The repo if the caller may see it; else a rename redirect or RepoNotFound."""
    token = bearer_token(request)
    with ctx.state.lock:
        repo = ctx.state.find(ref.repo_type, ref.repo_id)
        target = ctx.state.renames.get((ref.repo_type, ref.repo_id))
    if repo is None and target is not None:
        location = ref.with_id(target)
        return web.Response(
            status=307,
            text=f"Temporary Redirect. Redirecting to {location}",
            headers={"Location": location, "X-Request-Id": request_id()},
        )
    if repo is None:
        return repo_not_found(with_token=token is not None)
    if repo.private_token is not None and token != repo.private_token:
        return repo_not_found(with_token=token is not None)
    return repo


def check_gated(repo: Repo, request: web.BaseRequest) -> web.Response | None:
    """A GatedRepo error if the repo is gated and the caller's token is not allowed."""
    if repo.gated_tokens is None:
        return None
    token = bearer_token(request)
    if token is not None and token in repo.gated_tokens:
        return None
    return gated_error(repo.repo_type, repo.repo_id, with_token=token is not None)
