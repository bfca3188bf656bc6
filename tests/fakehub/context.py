"""What every handler needs: state, faults, log, own URLs and the CDN signing key."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from .faults import FaultTable
from .model import HubState
from .records import RequestLog

SIGNED_TTL_S = 3600


@dataclass
class Ctx:
    state: HubState
    faults: FaultTable
    log: RequestLog
    page_size: int
    hub_url: str = ""
    cdn_url: str = ""
    cas_url: str = ""
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def sign(self, path: str, disposition: str) -> str:
        """A presigned-looking query string for ``path`` on the CDN."""
        now = time.time()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        params = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("X-Amz-Credential", f"FAKEHUBKEY/{amz_date[:8]}/us-east-1/s3/aws4_request"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(SIGNED_TTL_S)),
            ("X-Amz-Signature", self._mac(path, amz_date, str(SIGNED_TTL_S), disposition)),
            ("X-Amz-SignedHeaders", "host"),
            ("response-content-disposition", disposition),
            ("x-id", "GetObject"),
        ]
        return urlencode(params)

    def verify(self, path: str, raw_query: str) -> str | None:
        """None if the query carries a valid signature for ``path``, else the reason."""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        signature = params.get("X-Amz-Signature")
        amz_date = params.get("X-Amz-Date", "")
        expires = params.get("X-Amz-Expires", "")
        if signature is None:
            return "Query-string authentication requires the X-Amz-Signature parameter"
        disposition = params.get("response-content-disposition", "")
        expected = self._mac(path, amz_date, expires, disposition)
        if not hmac.compare_digest(signature, expected):
            return "The request signature we calculated does not match the signature you provided"
        try:
            issued = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
            if issued + int(expires) < time.time():
                return "Request has expired"
        except (ValueError, OverflowError):
            return "X-Amz-Date is malformed"
        return None

    def _mac(self, path: str, amz_date: str, expires: str, disposition: str) -> str:
        message = f"GET\n{path}\n{amz_date}\n{expires}\n{disposition}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


CTX_KEY = web.AppKey("fakehub_ctx", Ctx)
