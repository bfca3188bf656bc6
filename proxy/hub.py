"""The Hugging Face Hub's HTTP dialect: routes in, headers and JSON out.

Everything that knows how the Hub spells things lives here: URL shapes, repo-id and revision
rules, the metadata headers of `/resolve`, the error headers the client reads, pagination links,
and the Xet advertisements that must never reach a client (hub-protocol.md §3, §6, §7).

The router works on the *raw* request path: a revision such as `refs/pr/1` arrives as the single
segment `refs%2Fpr%2F1`, and decoding before splitting would route it wrongly (§2.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote

from proxy.errors import BadRequest, NotFound

GIT_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# huggingface_hub's validate_repo_id, restricted to ASCII: word characters, '-', '.', and at most
# one '/'; each part starts and ends with a word character; no '--' or '..'.
_REPO_PART_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_PATH_CHARS = 4096
MAX_REVISION_CHARS = 255

# Headers a browser-side client may read; the Hub sends the same list.
EXPOSED_HEADERS = (
    "X-Repo-Commit, X-Request-Id, X-Error-Code, X-Error-Message, X-Total-Count, ETag, Link, "
    "Accept-Ranges, Content-Range, X-Linked-Size, X-Linked-ETag, X-HF-Warning"
)
HARNESSES_BODY: dict[str, object] = {"standardEnvVars": [], "harnesses": {}}


class RepoType(StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    SPACE = "space"

    @property
    def url_prefix(self) -> str:
        """Prefix of `/resolve` URLs: models have none."""
        return "" if self is RepoType.MODEL else f"{self.value}s/"

    @property
    def api_plural(self) -> str:
        return f"{self.value}s"

    @classmethod
    def from_plural(cls, plural: str) -> RepoType:
        for member in cls:
            if member.api_plural == plural:
                return member
        raise NotFound(f"Unknown repo type {plural!r}")


@dataclass(frozen=True)
class RepoRef:
    repo_type: RepoType
    repo_id: str

    def __str__(self) -> str:
        return f"{self.repo_type.url_prefix}{self.repo_id}"


@dataclass(frozen=True)
class FileRef:
    repo: RepoRef
    revision: str
    path: str

    def at(self, commit: str) -> FileRef:
        return FileRef(self.repo, commit, self.path)


class ApiKind(StrEnum):
    INFO = "info"
    REVISION = "revision"
    TREE = "tree"
    PATHS_INFO = "paths-info"
    REFS = "refs"
    COMMITS = "commits"
    XET_READ_TOKEN = "xet-read-token"  # noqa: S105 (a route name, not a secret)


# How many arguments each repo action takes after the repo id (revision, then an optional path).
_ACTION_ARITY = {
    ApiKind.REVISION: (1, 1),
    ApiKind.TREE: (1, None),
    ApiKind.PATHS_INFO: (1, 1),
    ApiKind.REFS: (0, 0),
    ApiKind.COMMITS: (1, 1),
    ApiKind.XET_READ_TOKEN: (1, 1),
}


@dataclass(frozen=True)
class ResolveRoute:
    file: FileRef


@dataclass(frozen=True)
class RepoApiRoute:
    kind: ApiKind
    repo: RepoRef
    revision: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class HarnessesRoute:
    pass


# Other read-only API paths passed upstream as they are: who am I, and listing or searching
# repos. Only these exact paths: a raw path forwarded upstream could otherwise climb out of
# /api/ (`/api/x/../../org/repo/resolve/...`) and fetch a file around the pipeline.
PASS_THROUGH_API_PATHS = frozenset(
    {"/api/whoami-v2", "/api/models", "/api/datasets", "/api/spaces"}
)


@dataclass(frozen=True)
class PassThroughApiRoute:
    """A read-only `/api/...` call that is not about one repo: proxied, never cached."""

    path: str


Route = ResolveRoute | RepoApiRoute | HarnessesRoute | PassThroughApiRoute


def parse_route(raw_path: str) -> Route:
    """Turn the raw (still percent-encoded) request path into a typed route, or raise."""
    if len(raw_path) > MAX_PATH_CHARS:
        raise BadRequest("Request path is too long")
    if "?" in raw_path or "#" in raw_path:
        raise BadRequest("Malformed request path")
    segments = raw_path.split("/")[1:]
    if segments and segments[0] == "api":
        return _parse_api(segments[1:], raw_path)
    return ResolveRoute(_parse_resolve(segments))


def _parse_resolve(segments: list[str]) -> FileRef:
    repo_type = RepoType.MODEL
    if segments and segments[0] in ("datasets", "spaces"):
        repo_type = RepoType.from_plural(segments[0])
        segments = segments[1:]
    try:
        at = segments.index("resolve", 1)
    except ValueError:
        raise NotFound("Not a Hub resolve URL") from None
    if at > 2 or len(segments) < at + 3:
        raise NotFound("Not a Hub resolve URL")
    repo = RepoRef(repo_type, parse_repo_id(segments[:at]))
    revision = parse_revision(segments[at + 1])
    return FileRef(repo, revision, parse_repo_path(segments[at + 2 :]))


def _parse_api(segments: list[str], raw_path: str) -> Route:
    if segments == ["agent-harnesses"]:
        return HarnessesRoute()
    if segments and segments[0] == "resolve-cache":
        return _parse_resolve_cache(segments[1:])
    if raw_path in PASS_THROUGH_API_PATHS:
        return PassThroughApiRoute(raw_path)
    if len(segments) < 2 or segments[0] not in ("models", "datasets", "spaces"):
        raise NotFound("Airlock does not serve this Hub API path")
    repo_type = RepoType.from_plural(segments[0])
    rest = segments[1:]
    # Canonical repos have no namespace (`/api/models/gpt2/tree/main`); try that reading first
    # only where the action's arity fits, else read two segments as the repo id.
    for id_len in (1, 2):
        if len(rest) == id_len:
            return RepoApiRoute(ApiKind.INFO, RepoRef(repo_type, parse_repo_id(rest)))
        if len(rest) > id_len:
            route = _repo_action(repo_type, rest[:id_len], rest[id_len], rest[id_len + 1 :])
            if route is not None:
                return route
    raise NotFound("Unknown Hub API path")


def _repo_action(
    repo_type: RepoType, id_segments: list[str], action: str, args: list[str]
) -> RepoApiRoute | None:
    try:
        kind = ApiKind(action)
    except ValueError:
        return None
    if kind is ApiKind.INFO:
        return None
    low, high = _ACTION_ARITY[kind]
    if len(args) < low or (high is not None and len(args) > high):
        return None
    repo = RepoRef(repo_type, parse_repo_id(id_segments))
    revision = parse_revision(args[0]) if args else None
    path = parse_repo_path(args[1:]) if len(args) > 1 else None
    return RepoApiRoute(kind, repo, revision, path)


def _parse_resolve_cache(segments: list[str]) -> ResolveRoute:
    """`/api/resolve-cache/{type}s/{repo}/{commit}/{path}`: the modern Hub's redirect target."""
    if len(segments) < 4 or segments[0] not in ("models", "datasets", "spaces"):
        raise NotFound("Not a resolve-cache URL")
    repo_type = RepoType.from_plural(segments[0])
    rest = segments[1:]
    for id_len in (2, 1):
        if len(rest) > id_len + 1 and GIT_SHA1_RE.match(rest[id_len]):
            repo = RepoRef(repo_type, parse_repo_id(rest[:id_len]))
            return ResolveRoute(FileRef(repo, rest[id_len], parse_repo_path(rest[id_len + 1 :])))
    raise NotFound("Not a resolve-cache URL")


def parse_repo_id(segments: list[str]) -> str:
    parts = [_decode(s) for s in segments]
    if not 1 <= len(parts) <= 2:
        raise BadRequest("Invalid repo id")
    for part in parts:
        if not _REPO_PART_RE.match(part) or "--" in part or ".." in part:
            raise BadRequest(f"Invalid repo id: {'/'.join(parts)!r}")
    if parts[-1].endswith(".git"):
        raise BadRequest("Invalid repo id: a repo name cannot end with .git")
    return "/".join(parts)


def parse_revision(segment: str) -> str:
    """A branch, tag, commit or `refs/pr/N`, checked with git's ref-name rules."""
    revision = _decode(segment)
    if (
        not revision
        or len(revision) > MAX_REVISION_CHARS
        or _CONTROL_RE.search(revision)
        or any(c in revision for c in " ~^:?*[\\")
        or ".." in revision
        or "//" in revision
        or "@{" in revision
        or revision.startswith(("/", "-", "."))
        or revision.endswith(("/", ".", ".lock"))
        or "/." in revision
    ):
        raise BadRequest(f"Invalid revision: {revision!r}")
    return revision


def parse_repo_path(segments: list[str]) -> str:
    """A file path inside a repo. It is only ever used as a key, never on the filesystem, but it
    is still held to what a git tree can contain: no empty, `.` or `..` parts, no control bytes."""
    parts = [_decode(s) for s in segments]
    for part in parts:
        if part in ("", ".", "..") or "/" in part or _CONTROL_RE.search(part):
            raise BadRequest(
                "Invalid file path: empty, '.' or '..' parts and control characters are refused"
            )
    path = "/".join(parts)
    if not path or len(path) > MAX_PATH_CHARS:
        raise BadRequest("Invalid file path")
    return path


def _decode(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("Request path is not valid percent-encoded UTF-8") from None


# --- URLs Airlock sends upstream ---------------------------------------------------------------


def quote_segment(value: str) -> str:
    return quote(value, safe="")


def quote_path(path: str) -> str:
    return quote(path, safe="/")


def resolve_url_path(file: FileRef) -> str:
    repo = file.repo
    return (
        f"/{repo.repo_type.url_prefix}{repo.repo_id}/resolve/"
        f"{quote_segment(file.revision)}/{quote_path(file.path)}"
    )


def api_url_path(route: RepoApiRoute) -> str:
    base = f"/api/{route.repo.repo_type.api_plural}/{route.repo.repo_id}"
    if route.kind is ApiKind.INFO:
        return base
    url = f"{base}/{route.kind.value}"
    if route.revision is not None:
        url += "/" + quote_segment(route.revision)
    if route.path is not None:
        url += "/" + quote_path(route.path)
    return url


# --- What Airlock answers -----------------------------------------------------------------------


def quote_etag(value: str) -> str:
    return f'"{value}"'


def parse_etag(value: str | None) -> str | None:
    """The client's rule: strip a leading W/ and the quotes."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def file_headers(*, commit: str, etag: str, size_bytes: int, path: str) -> dict[str, str]:
    """The metadata headers of a `/resolve` answer. `etag` is the git sha1 of a small file or the
    sha256 of an LFS file, as on the Hub; the client names its cache blob after it."""
    name = path.rsplit("/", 1)[-1]
    return {
        "X-Repo-Commit": commit,
        "ETag": quote_etag(etag),
        "X-Linked-Etag": quote_etag(etag),
        "X-Linked-Size": str(size_bytes),
        "Accept-Ranges": "bytes",
        "Content-Disposition": _content_disposition(name),
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
    }


def _content_disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"inline; filename*=UTF-8''{quote(name)}; filename=\"{ascii_name}\""


def header_safe(message: str) -> str:
    """One line of latin-1 text, as an HTTP header value must be."""
    line = " ".join(message.split())
    return line.encode("latin-1", "replace").decode("latin-1")[:2000]


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def warning_header(topic: str, message: str) -> str:
    """`X-HF-Warning: <topic>; <message>`: huggingface_hub logs it once per topic (§6.1)."""
    return header_safe(f"{topic}; {message}")


# --- Xet: the client must never leave Airlock for the Xet service (§7.3) ------------------------

_XET_LINK_RELS = ("xet-auth", "xet-reconstruction-info")


def strip_xet_json(value: Any) -> Any:
    """Remove every `xetHash` field, wherever it sits in a tree, paths-info or info answer."""
    if isinstance(value, dict):
        return {k: strip_xet_json(v) for k, v in value.items() if k != "xetHash"}
    if isinstance(value, list):
        return [strip_xet_json(v) for v in value]
    return value


_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;[^,<]*)*)")


def rewrite_link_header(value: str, upstream_origin: str, public_base: str) -> str | None:
    """Drop Xet relations and point the remaining links at Airlock. The client follows a
    `rel="next"` link verbatim, so it must be absolute and ours (§1.7)."""
    kept: list[str] = []
    for match in _LINK_RE.finditer(value):
        url, params = match.group(1), match.group(2)
        if any(f'rel="{rel}"' in params or f"rel={rel}" in params for rel in _XET_LINK_RELS):
            continue
        if url.startswith(upstream_origin + "/"):
            url = public_base + url[len(upstream_origin) :]
        elif url.startswith("/"):
            url = public_base + url
        elif "://" in url:
            continue  # a link to any other origin would lead the client around Airlock
        kept.append(f"<{url}>{params}")
    return ", ".join(kept) or None
