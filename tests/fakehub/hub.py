"""``FakeHub``: the public, thread-safe control surface used by tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .content import Blob, to_blob, virtual_blob
from .context import Ctx
from .faults import Endpoint, Fault, FaultRule, FaultTable
from .model import FileObj, HubState, Repo, RepoType, ResolveStyle
from .records import RequestLog, RequestRecord
from .runtime import ServerThread

Content = bytes | Path
HUGE_SIZE = 60_000_000_000


@dataclass(frozen=True)
class FileInfo:
    """Identity of one file at one revision, for assertions."""

    path: str
    size: int
    sha256: str
    git_sha1: str  # git object id (tree "oid" / small-file ETag): pointer's for LFS files
    content_sha1: str  # git blob sha1 of the content itself
    lfs: bool
    pointer: bytes | None
    xet_hash: str | None


class FakeHub:
    """A fake Hugging Face Hub: hub + CDN + Xet CAS stub listeners on loopback."""

    def __init__(
        self,
        page_size: int = 50,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
        cas_port: int = 0,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self._state = HubState()
        self._ctx = Ctx(
            state=self._state, faults=FaultTable(), log=RequestLog(), page_size=page_size
        )
        self._server = ServerThread(
            self._ctx, host, {"hub": port, "cdn": cdn_port, "cas": cas_port}
        )
        self._started = False

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeHub:
        if not self._started:
            self._server.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _url(self, origin: str) -> str:
        if not self._started:
            raise RuntimeError("FakeHub is not started")
        return {"hub": self._ctx.hub_url, "cdn": self._ctx.cdn_url, "cas": self._ctx.cas_url}[
            origin
        ]

    @property
    def url(self) -> str:
        return self._url("hub")

    @property
    def cdn_url(self) -> str:
        return self._url("cdn")

    @property
    def cas_url(self) -> str:
        return self._url("cas")

    @property
    def page_size(self) -> int:
        return self._ctx.page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        if value < 1:
            raise ValueError("page_size must be >= 1")
        self._ctx.page_size = value

    # --- repos -----------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, Content],
        *,
        repo_type: RepoType = "model",
        private_token: str | None = None,
        gated_tokens: Iterable[str] | None = None,
        xet: bool = False,
        resolve_style: ResolveStyle = "direct",
        lfs_paths: Iterable[str] | None = None,
        title: str = "Upload folder using huggingface_hub",
    ) -> str:
        """Create a repo (initial commit with .gitattributes, then ``files``) -> main's sha."""
        blobs = _blobs(files)
        with self._state.lock:
            repo = self._state.create_repo(
                repo_id,
                repo_type,
                private_token=private_token,
                gated_tokens=gated_tokens,
                xet=xet,
                resolve_style=resolve_style,
            )
            if blobs or lfs_paths:
                sha = self._state.add_commit(
                    repo, repo.branches["main"], blobs, (), title, lfs_paths or ()
                )
                repo.branches["main"] = sha
            return repo.branches["main"]

    def commit(
        self,
        repo_id: str,
        files: Mapping[str, Content],
        *,
        repo_type: RepoType = "model",
        branch: str = "main",
        delete: Iterable[str] = (),
        title: str = "Update files",
        lfs_paths: Iterable[str] | None = None,
    ) -> str:
        """New commit on top of ``branch`` (created from main if missing); moves the branch."""
        blobs = _blobs(files)
        with self._state.lock:
            repo = self._state.get(repo_type, repo_id)
            parent = repo.branches.get(branch, repo.branches.get("main"))
            sha = self._state.add_commit(repo, parent, blobs, delete, title, lfs_paths or ())
            repo.branches[branch] = sha
            return sha

    def open_pr(
        self,
        repo_id: str,
        files: Mapping[str, Content],
        *,
        repo_type: RepoType = "model",
        base: str = "main",
        delete: Iterable[str] = (),
        title: str = "Pull request",
    ) -> str:
        """A commit on top of ``base`` published as refs/pr/N (N = 1, 2, ...) -> its sha."""
        blobs = _blobs(files)
        with self._state.lock:
            repo = self._state.get(repo_type, repo_id)
            parent = self._resolve(repo, base)
            sha = self._state.add_commit(repo, parent, blobs, delete, title)
            repo.prs[max(repo.prs, default=0) + 1] = sha
            return sha

    def tag(
        self, repo_id: str, tag: str, revision: str = "main", *, repo_type: RepoType = "model"
    ) -> str:
        """Point tag ``tag`` at ``revision`` (sha, branch or tag) -> the tagged sha."""
        with self._state.lock:
            repo = self._state.get(repo_type, repo_id)
            sha = self._resolve(repo, revision)
            repo.tags[tag] = sha
            return sha

    def move_branch(
        self, repo_id: str, branch: str, revision: str, *, repo_type: RepoType = "model"
    ) -> str:
        """Point ``branch`` (created if missing) at ``revision`` -> the sha."""
        with self._state.lock:
            repo = self._state.get(repo_type, repo_id)
            sha = self._resolve(repo, revision)
            repo.branches[branch] = sha
            return sha

    def delete_branch(self, repo_id: str, branch: str, *, repo_type: RepoType = "model") -> None:
        with self._state.lock:
            del self._state.get(repo_type, repo_id).branches[branch]

    def rename(self, old_id: str, new_id: str, *, repo_type: RepoType = "model") -> None:
        """Move a repo; the old id then answers relative 307s to the new one.

        If ``old_id`` does not exist but ``new_id`` does, ``old_id`` becomes a redirect alias.
        """
        with self._state.lock:
            self._state.rename(repo_type, old_id, new_id)

    def add_huge_file(
        self,
        repo_id: str,
        path: str,
        size: int = HUGE_SIZE,
        *,
        repo_type: RepoType = "model",
        branch: str = "main",
    ) -> str:
        """Commit an announced-only LFS file of ``size`` bytes (GET of its bytes: 500)."""
        blob = virtual_blob(f"{repo_type}/{repo_id}/{path}", size)
        with self._state.lock:
            if self._state.find(repo_type, repo_id) is None:
                self._state.create_repo(
                    repo_id,
                    repo_type,
                    private_token=None,
                    gated_tokens=None,
                    xet=False,
                    resolve_style="direct",
                )
            repo = self._state.get(repo_type, repo_id)
            parent = repo.branches.get(branch, repo.branches.get("main"))
            sha = self._state.add_commit(repo, parent, {path: blob}, (), f"Add {path}")
            repo.branches[branch] = sha
            return sha

    # --- inspection ------------------------------------------------------------------
    def head_commit(
        self, repo_id: str, *, repo_type: RepoType = "model", branch: str = "main"
    ) -> str:
        with self._state.lock:
            return self._resolve(self._state.get(repo_type, repo_id), branch)

    def file_info(
        self, repo_id: str, path: str, repo_type: RepoType = "model", revision: str = "main"
    ) -> FileInfo:
        found = self._file(repo_id, path, repo_type, revision)
        return FileInfo(
            path=found.path,
            size=found.size,
            sha256=found.blob.sha256,
            git_sha1=found.oid,
            content_sha1=found.blob.sha1,
            lfs=found.lfs,
            pointer=found.pointer,
            xet_hash=found.xet_hash,
        )

    def file_sha256(
        self, repo_id: str, path: str, repo_type: RepoType = "model", revision: str = "main"
    ) -> str:
        return self._file(repo_id, path, repo_type, revision).blob.sha256

    def file_git_sha1(
        self, repo_id: str, path: str, repo_type: RepoType = "model", revision: str = "main"
    ) -> str:
        """The git object id: content's blob sha1, or the LFS pointer's for LFS files."""
        return self._file(repo_id, path, repo_type, revision).oid

    def file_bytes(
        self, repo_id: str, path: str, repo_type: RepoType = "model", revision: str = "main"
    ) -> bytes:
        return self._file(repo_id, path, repo_type, revision).blob.read_all()

    def list_files(
        self, repo_id: str, repo_type: RepoType = "model", revision: str = "main"
    ) -> list[str]:
        with self._state.lock:
            repo = self._state.get(repo_type, repo_id)
            return sorted(repo.commits[self._resolve(repo, revision)].files)

    # --- faults ----------------------------------------------------------------------
    def set_fault(
        self,
        kind: Fault,
        *,
        path: str | None = None,
        endpoint: Endpoint | None = None,
        repo_id: str | None = None,
        method: str | None = None,
        times: int | None = 1,
        status: int = 500,
        stall_s: float = 15.0,
        delay_s: float = 12.0,
        rate_bytes_s: int = 1_000_000,
        retry_after: int | None = None,
        length_delta: int = -1,
        throttle: bool = False,
    ) -> FaultRule:
        """Inject ``kind`` into the next ``times`` matching requests (None = forever)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if endpoint not in (None, "api", "resolve", "cdn"):
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if rate_bytes_s < 1 or length_delta == 0:
            raise ValueError("rate_bytes_s must be >= 1 and length_delta != 0")
        rule = FaultRule(
            kind=kind,
            path=path,
            endpoint=endpoint,
            repo_id=repo_id,
            method=method.upper() if method is not None else None,
            times=times,
            status=status,
            stall_s=stall_s,
            delay_s=delay_s,
            rate_bytes_s=rate_bytes_s,
            retry_after=retry_after,
            length_delta=length_delta,
            throttle=throttle,
        )
        self._ctx.faults.add(rule)
        return rule

    def clear_faults(self) -> None:
        self._ctx.faults.clear()

    @property
    def faults(self) -> list[FaultRule]:
        """Rules not yet used up (``times`` shows the remaining count)."""
        return self._ctx.faults.active()

    # --- request log -----------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        return self._ctx.log.snapshot()

    def clear_log(self) -> None:
        self._ctx.log.clear()

    def write_log(self, path: str | Path) -> None:
        self._ctx.log.write(Path(path))

    # --- helpers ---------------------------------------------------------------------
    def _file(self, repo_id: str, path: str, repo_type: RepoType, revision: str) -> FileObj:
        with self._state.lock:
            repo = self._state.get(repo_type, repo_id)
            files = repo.commits[self._resolve(repo, revision)].files
            if path not in files:
                raise KeyError(f"{path} not in {repo_id}@{revision}")
            return files[path]

    @staticmethod
    def _resolve(repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise KeyError(f"unknown revision {revision!r} of {repo.repo_id}")
        return sha


def _blobs(files: Mapping[str, Content]) -> dict[str, Blob]:
    """Hash all contents before taking the state lock (files stream from disk)."""
    return {path: to_blob(content) for path, content in files.items()}
