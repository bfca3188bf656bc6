"""``/api/...`` handlers: repo info, tree, paths-info, refs, commits, xet token, misc."""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import parse_qsl, quote, unquote

from aiohttp import web

from .access import RepoRef, check_gated, open_repo, parse_api_repo, parse_resolve_cache
from .context import Ctx
from .httputil import entry_not_found, hub_error, json_response, revision_not_found
from .listing import (
    Json,
    commit_json,
    decode_cursor,
    encode_cursor,
    entry_json,
    refs_json,
    repo_info_json,
    tree_paths,
)
from .model import Commit, Repo
from .routes_resolve import handle_resolve_cache

TRUE_VALUES = ("1", "true", "yes")


def _flag(params: dict[str, str], name: str) -> bool:
    return params.get(name, "").lower() in TRUE_VALUES


def not_found_page() -> web.Response:
    return hub_error(404, None, "Sorry, we can't find the page you are looking for.")


def _paginate(ctx: Ctx, path: str, query: str, items: list[Json]) -> web.Response:
    params = dict(parse_qsl(query, keep_blank_values=True))
    offset = 0
    if params.get("cursor"):
        decoded = decode_cursor(params["cursor"])
        if decoded is None:
            return hub_error(400, None, "Invalid cursor")
        offset = decoded
    size = ctx.page_size
    if params.get("limit", "").isdigit() and int(params["limit"]) > 0:
        size = int(params["limit"])
    headers: dict[str, str] = {}
    if offset + size < len(items):
        kept = [p for p in query.split("&") if p and p.split("=", 1)[0] != "cursor"]
        kept.append("cursor=" + quote(encode_cursor(offset + size), safe=""))
        headers["Link"] = f'<{ctx.hub_url}{path}?{"&".join(kept)}>; rel="next"'
    return json_response(items[offset : offset + size], headers=headers)


def _commit_at(ctx: Ctx, repo: Repo, rev: str) -> Commit | web.Response:
    with ctx.state.lock:
        sha = repo.resolve(rev)
        commit = repo.commits[sha] if sha is not None else None
    if commit is None:
        return revision_not_found(rev)
    return commit


async def handle_api(
    ctx: Ctx, request: web.BaseRequest, path: str, query: str
) -> web.StreamResponse:
    segs = path.split("/")[2:]
    if segs == ["agent-harnesses"]:
        return json_response({"standardEnvVars": [], "harnesses": {}})
    if segs == ["whoami-v2"]:
        if "Authorization" not in request.headers:
            return hub_error(401, None, "Invalid username or password.")
        return json_response({"type": "user", "name": "user", "fullname": "Fake User"})
    if segs and segs[0] == "resolve-cache":
        cache_ref = parse_resolve_cache(segs[1:], query)
        if cache_ref is None:
            return not_found_page()
        return await handle_resolve_cache(ctx, request, cache_ref)
    ref = parse_api_repo(ctx, segs, query)
    if ref is None:
        return not_found_page()
    opened = open_repo(ctx, request, ref)
    if isinstance(opened, web.Response):
        return opened
    return await _repo_action(ctx, request, opened, ref, path, query)


async def _repo_action(
    ctx: Ctx, request: web.BaseRequest, repo: Repo, ref: RepoRef, path: str, query: str
) -> web.Response:
    params = dict(parse_qsl(query, keep_blank_values=True))
    action = ref.rest[0] if ref.rest else ""
    rev_raw = ref.rest[1] if len(ref.rest) > 1 else "main"
    rev = unquote(rev_raw)
    if action == "paths-info":
        if request.method != "POST":
            return hub_error(405, None, "Method not allowed")
        return await _paths_info(ctx, request, repo, rev)
    if request.method not in ("GET", "HEAD"):
        return hub_error(405, None, "Method not allowed")
    if action in ("", "revision"):
        if action == "revision" and len(ref.rest) > 2:
            rev = unquote("/".join(ref.rest[1:]))
        commit = _commit_at(ctx, repo, rev)
        if isinstance(commit, web.Response):
            return commit
        with ctx.state.lock:
            info = repo_info_json(repo, commit, blobs=_flag(params, "blobs"))
        return json_response(info)
    if action == "tree":
        return _tree(ctx, repo, ref, rev, path, query, params)
    if action == "refs":
        with ctx.state.lock:
            refs = refs_json(repo, include_prs=_flag(params, "include_prs"))
        return json_response(refs)
    if action == "commits":
        commit = _commit_at(ctx, repo, rev)
        if isinstance(commit, web.Response):
            return commit
        with ctx.state.lock:
            items = [commit_json(c) for c in repo.history(commit.sha)]
        return _paginate(ctx, path, query, items)
    if action == "xet-read-token":
        return _xet_token(ctx, request, repo, rev)
    return not_found_page()


def _tree(
    ctx: Ctx,
    repo: Repo,
    ref: RepoRef,
    rev: str,
    path: str,
    query: str,
    params: dict[str, str],
) -> web.Response:
    commit = _commit_at(ctx, repo, rev)
    if isinstance(commit, web.Response):
        return commit
    sub = unquote("/".join(ref.rest[2:])).strip("/")
    expand = _flag(params, "expand")
    with ctx.state.lock:
        paths = tree_paths(commit, sub, _flag(params, "recursive"))
        if paths is None:
            return entry_not_found(commit.sha)
        items = [entry_json(repo, commit, p, expand=expand) for p in paths]
    return _paginate(ctx, path, query, items)


async def _paths_info(ctx: Ctx, request: web.BaseRequest, repo: Repo, rev: str) -> web.Response:
    wanted: list[str] = []
    expand = False
    if request.content_type == "application/json":
        try:
            payload = json.loads(await request.read())
            wanted = [str(p) for p in payload.get("paths", [])]
            expand = str(payload.get("expand", "")).lower() in TRUE_VALUES
        except (ValueError, AttributeError):
            return hub_error(400, None, "Invalid JSON body")
    else:
        form = await request.post()
        wanted = [p for p in form.getall("paths", []) if isinstance(p, str)]
        raw_expand = form.get("expand", "")
        expand = isinstance(raw_expand, str) and raw_expand.lower() in TRUE_VALUES
    commit = _commit_at(ctx, repo, rev)
    if isinstance(commit, web.Response):
        return commit
    out: list[Json] = []
    seen: set[str] = set()
    with ctx.state.lock:
        for raw in wanted:
            clean = raw.strip("/")
            if clean in seen or commit.signature(clean) is None or not clean:
                continue
            seen.add(clean)
            out.append(entry_json(repo, commit, clean, expand=expand))
    return json_response(out)


def _xet_token(ctx: Ctx, request: web.BaseRequest, repo: Repo, rev: str) -> web.Response:
    denied = check_gated(repo, request)
    if denied is not None:
        return denied
    commit = _commit_at(ctx, repo, rev)
    if isinstance(commit, web.Response):
        return commit
    token = "xet_" + secrets.token_hex(16)
    expires = int(time.time()) + 3600
    headers = {
        "X-Xet-Cas-Url": ctx.cas_url,
        "X-Xet-Access-Token": token,
        "X-Xet-Token-Expiration": str(expires),
    }
    body = {"casUrl": ctx.cas_url, "accessToken": token, "exp": expires}
    return json_response(body, headers=headers)
