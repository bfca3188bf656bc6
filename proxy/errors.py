"""The one tree of errors Airlock answers with.

Each class carries its HTTP status and the Hub's `X-Error-Code`, so that `huggingface_hub` maps it
to the right exception and shows our message (hub-protocol.md §6). `proxy.hub.error_response`
is the only renderer.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A bad setting: stops the process at start-up and names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class AirlockError(Exception):
    """Base of every error that becomes an HTTP answer."""

    status: int = 500
    error_code: str | None = None

    def __init__(self, message: str, *, commit: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The Hub puts X-Repo-Commit on EntryNotFound so the client can remember the miss.
        self.commit = commit
        self.extra_headers: dict[str, str] = {}


class BadRequest(AirlockError):
    status = 400


class NotFound(AirlockError):
    """A path Airlock does not serve at all (not a Hub route)."""

    status = 404


class MethodNotAllowed(AirlockError):
    status = 405


class RepoNotFound(AirlockError):
    status = 401
    error_code = "RepoNotFound"

    def __init__(self, message: str = "Repository not found", *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status
        if status == 401:
            self.extra_headers["WWW-Authenticate"] = (
                'Bearer realm="Authentication required", charset="UTF-8"'
            )


class GatedRepo(AirlockError):
    """Upstream says the caller may not read this repo's files."""

    status = 403
    error_code: str | None = "GatedRepo"

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class RevisionNotFound(AirlockError):
    status = 404
    error_code = "RevisionNotFound"


class EntryNotFound(AirlockError):
    status = 404
    error_code = "EntryNotFound"


class Refused(AirlockError):
    """Airlock refuses to serve a file. At HEAD time this must be 403 + GatedRepo, the only
    combination that huggingface_hub and transformers show to the user (hub-protocol §6.2)."""

    status = 403
    error_code: str | None = "GatedRepo"


class Blocked(Refused):
    """The scan and policy decided against the blob."""

    def __init__(
        self,
        message: str,
        *,
        decision_id: int | None,
        reasons: list[str],
        review_path: str | None = None,
        at_commit: str | None = None,
        upstream_file: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.decision_id = decision_id
        self.reasons = reasons
        self.review_path = review_path
        self.at_commit = at_commit  # for the audit row
        # (etag, size) upstream published for the file: what a HEAD let through shows
        self.upstream_file = upstream_file
        self._plain = message

    def point_to(self, base_url: str) -> None:
        """End the message with where to ask for a review, on the URL the client used."""
        if self.review_path is not None:
            self.message = f"{self._plain} Review: {base_url}{self.review_path}"

    def at_download(self) -> BlockedAtDownload:
        """The same refusal for a download whose HEAD was let through: 451 without an error
        code, so loaders that ignore GatedRepo show the message (see routes/resolve.py)."""
        return BlockedAtDownload(
            self._plain,
            decision_id=self.decision_id,
            reasons=self.reasons,
            review_path=self.review_path,
            at_commit=self.at_commit,
            upstream_file=self.upstream_file,
        )


class BlockedAtDownload(Blocked):
    status = 451
    error_code = None


class IntegrityMismatch(Refused):
    """Upstream's bytes differ in size or hash from what upstream itself published."""


class TooLarge(Refused):
    pass


class UpstreamUnavailable(AirlockError):
    """Upstream failed (5xx, 429) or could not be reached, and nothing cached can stand in."""

    status = 502

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: int | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.upstream_status = upstream_status
        if retry_after_s is not None:
            self.extra_headers["Retry-After"] = str(retry_after_s)


class Pending(AirlockError):
    """The file is still being fetched and scanned: the client should retry (it does, on 503)."""

    status = 503

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.extra_headers["Retry-After"] = str(retry_after_s)


class UpstreamError(AirlockError):
    """An upstream error answer passed on as it came (status and Hub error code kept)."""

    def __init__(
        self, status: int, message: str, *, error_code: str | None, commit: str | None = None
    ) -> None:
        super().__init__(message, commit=commit)
        self.status = status
        self.error_code = error_code
