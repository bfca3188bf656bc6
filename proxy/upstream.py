"""UpstreamClient: every request Airlock makes to the real Hub and its CDN.

It forwards the caller's `Authorization` to the Hub origin only (never to a CDN), follows the Hub's
same-origin redirects itself (renamed repos, `/api/resolve-cache/`), reads file metadata the way
huggingface_hub does (hub-protocol.md §3-§4), and turns upstream failures into Airlock errors.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from proxy import __version__
from proxy.auth import Caller
from proxy.errors import AirlockError, UpstreamError, UpstreamUnavailable
from proxy.hub import (
    GIT_SHA1_RE,
    SHA256_RE,
    FileRef,
    ResolveRoute,
    parse_etag,
    parse_route,
    resolve_url_path,
)
from proxy.metrics import Metrics
from proxy.settings import Settings

MAX_REDIRECTS = 10
MAX_API_BODY_BYTES = 64 * 1024 * 1024
USER_AGENT = f"airlock/{__version__}"


@dataclass(frozen=True)
class UpstreamMeta:
    """What upstream published about one file at one commit: the claims Airlock verifies."""

    commit: str
    size_bytes: int
    # sha256 for LFS files; None for small files, which the Hub identifies by git blob sha1.
    sha256: str | None
    git_sha1: str | None
    download_url: str
    # Authorization goes only to the Hub origin, never to a CDN host (as the real client does).
    download_sends_auth: bool

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        etag = self.sha256 or self.git_sha1
        assert etag is not None
        return etag

    @property
    def flight_key(self) -> str:
        return f"sha256:{self.sha256}" if self.sha256 else f"git:{self.git_sha1}"


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class UpstreamClient:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.origin = settings.upstream_origin
        parts = urlsplit(self.origin)
        self._origin_key = (parts.scheme, parts.hostname, parts.port)
        self._cdn_globs = tuple(settings.upstream_cdn_hosts)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.settings.upstream_connect_timeout_s,
            sock_connect=self.settings.upstream_connect_timeout_s,
            sock_read=self.settings.upstream_read_timeout_s,
        )
        # trust_env=False: Airlock must not send its own upstream traffic through the egress
        # proxy that exists to force everyone else through Airlock.
        self._session = aiohttp.ClientSession(
            timeout=timeout,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(limit=64, limit_per_host=32),
            # Bigger socket reads mean fewer, larger chunks for the hashing pipeline; the
            # reader pauses the socket beyond twice this, so memory per fetch stays bounded.
            read_bufsize=1 << 20,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not awaited")
        return self._session

    # --- file metadata ------------------------------------------------------------------------

    async def file_meta(self, file: FileRef, caller: Caller) -> UpstreamMeta:
        """HEAD `/resolve` like huggingface_hub: follow Hub-origin redirects, stop at a CDN one,
        and read the metadata from the last response (§4.1)."""
        url = self.origin + resolve_url_path(file)
        for _ in range(MAX_REDIRECTS):
            headers = _auth_headers(caller.authorization)
            headers["Accept-Encoding"] = "identity"
            async with self._request("HEAD", url, headers=headers) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    location = urljoin(url, resp.headers.get("Location", ""))
                    if self.same_origin(location):
                        url = location
                        continue
                    self.check_cdn_url(location)
                    return _meta_from(
                        resp.headers, download_url=location, sends_auth=False, redirect=True
                    )
                if resp.status >= 400:
                    raise _error_from(resp.status, resp.headers, b"")
                meta = _meta_from(resp.headers, download_url=url, sends_auth=True, redirect=False)
                return replace(meta, download_url=_pinned(url, meta.commit))
        raise UpstreamUnavailable(f"Upstream redirected more than {MAX_REDIRECTS} times")

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.hostname, parts.port) == self._origin_key

    def check_cdn_url(self, url: str) -> None:
        """A CDN URL comes from upstream, so it is checked before Airlock connects to it:
        only http(s), never a downgrade from https, and only hosts that are allowed."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or (
            self._origin_key[0] == "https" and parts.scheme != "https"
        ):
            raise UpstreamUnavailable("Upstream redirected to a URL scheme Airlock does not fetch")
        if host != self._origin_key[1] and not any(
            fnmatch.fnmatchcase(host, pattern) for pattern in self._cdn_globs
        ):
            raise UpstreamUnavailable(
                f"Upstream redirected to {host}, which is not an allowed CDN host "
                "(AIRLOCK_UPSTREAM_CDN_HOSTS)"
            )

    # --- file bytes ---------------------------------------------------------------------------

    @asynccontextmanager
    async def open_bytes(
        self, meta: UpstreamMeta, caller: Caller, *, start_byte: int
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET the file body from byte `start_byte`; the caller checks status and headers."""
        headers = _auth_headers(caller.authorization) if meta.download_sends_auth else {}
        headers["Accept-Encoding"] = "identity"
        if start_byte:
            headers["Range"] = f"bytes={start_byte}-"
        async with self._request("GET", meta.download_url, headers=headers) as resp:
            yield resp

    # --- API ----------------------------------------------------------------------------------

    async def api(
        self,
        method: str,
        path_qs: str,
        caller: Caller,
        *,
        form: list[tuple[str, str]] | None = None,
    ) -> ApiAnswer:
        """Call a Hub API path and return the final answer, following Hub-origin redirects
        (a renamed repo answers 307). Error statuses raise."""
        url = self.origin + path_qs
        for _ in range(MAX_REDIRECTS):
            async with self._request(
                method, url, headers=_auth_headers(caller.authorization), data=form
            ) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    location = urljoin(url, resp.headers.get("Location", ""))
                    if not self.same_origin(location):
                        raise UpstreamUnavailable("Upstream API redirected to another origin")
                    url = location
                    continue
                body = await _read_bounded(resp, MAX_API_BODY_BYTES)
                if resp.status >= 400:
                    raise _error_from(resp.status, resp.headers, body)
                return ApiAnswer(resp.status, dict(resp.headers), body)
        raise UpstreamUnavailable(f"Upstream redirected more than {MAX_REDIRECTS} times")

    # --- plumbing -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        try:
            async with self.session.request(
                method, url, headers=headers, data=data, allow_redirects=False
            ) as resp:
                if resp.status == 429 or resp.status >= 500:
                    self._count_error("429" if resp.status == 429 else "5xx")
                    raise UpstreamUnavailable(
                        _message_from(resp.headers, b"")
                        or f"Upstream answered {resp.status} {resp.reason}",
                        retry_after_s=_retry_after(resp.headers),
                        upstream_status=resp.status,
                    )
                yield resp
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            # Also what the caller's body reads raise: a stalled body is a timeout, a cut one
            # (ClientPayloadError) a connection error. aiohttp's timeouts are ConnectionErrors
            # too, so TimeoutError is asked first.
            self._count_error("timeout" if isinstance(exc, TimeoutError) else "connection")
            raise UpstreamUnavailable(
                f"Upstream {urlsplit(url).hostname} could not be reached: {type(exc).__name__}"
            ) from exc

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.upstream_error(kind)


def _pinned(url: str, commit: str) -> str:
    """A `/resolve/{branch}/...` URL rewritten to `/resolve/{commit}/...`, so that the GET fetches
    the bytes the HEAD described even if the branch moves in between. Other URLs (resolve-cache)
    already name the commit."""
    parts = urlsplit(url)
    try:
        route = parse_route(parts.path)
    except AirlockError:
        return url
    if not isinstance(route, ResolveRoute) or "/api/" in parts.path:
        return url
    pinned = resolve_url_path(route.file.at(commit))
    return urlunsplit((parts.scheme, parts.netloc, pinned, parts.query, ""))


def _auth_headers(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization else {}


def _meta_from(
    headers: Mapping[str, str], *, download_url: str, sends_auth: bool, redirect: bool
) -> UpstreamMeta:
    commit = headers.get("X-Repo-Commit", "")
    if not GIT_SHA1_RE.match(commit):
        raise UpstreamUnavailable("Upstream's answer lacks a valid X-Repo-Commit header")
    etag = parse_etag(headers.get("X-Linked-Etag") or headers.get("ETag"))
    size_text = headers.get("X-Linked-Size") or (
        None if redirect else headers.get("Content-Length")
    )
    if size_text is None or not size_text.isdigit():
        raise UpstreamUnavailable("Upstream's answer gives no file size Airlock can verify")
    size = int(size_text)
    if etag and SHA256_RE.match(etag):
        return UpstreamMeta(commit, size, etag, None, download_url, sends_auth)
    if etag and GIT_SHA1_RE.match(etag):
        return UpstreamMeta(commit, size, None, etag, download_url, sends_auth)
    raise UpstreamUnavailable(
        "Upstream's ETag is neither a git sha1 nor a sha256, so the file cannot be verified"
    )


def _message_from(headers: Mapping[str, str], body: bytes) -> str | None:
    message = headers.get("X-Error-Message")
    if message:
        return message
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    return None


def _error_from(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    return UpstreamError(
        status,
        _message_from(headers, body) or f"Upstream answered {status}",
        error_code=headers.get("X-Error-Code"),
        commit=headers.get("X-Repo-Commit"),
    )


def _retry_after(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        total += len(chunk)
        if total > limit:
            raise UpstreamUnavailable("Upstream API answer is larger than Airlock accepts")
        chunks.append(chunk)
    return b"".join(chunks)
