"""Logging: JSON lines, and no credential ever rendered."""

from __future__ import annotations

import io
import json
import logging

import structlog

from proxy import log


def test_events_are_json_with_secrets_redacted() -> None:
    stream = io.StringIO()
    saved_config = structlog.get_config()
    saved_handlers = logging.getLogger().handlers[:]
    log.configure("info", stream=stream)
    try:
        structlog.get_logger("t").info(
            "upstream_fetched",
            authorization="Bearer hf_abcdefghijklmnop",
            note="used Bearer hf_abcdefghijklmnop and hf_qrstuvwxyz123456",
            size_bytes=3,
        )
        logging.getLogger("aiohttp.server").warning("stdlib says Basic dXNlcjpwYXNz")
    finally:
        structlog.configure(**saved_config)
        logging.getLogger().handlers[:] = saved_handlers
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "upstream_fetched"
    assert lines[0]["level"] == "info"
    assert lines[0]["timestamp"].endswith("Z")
    assert lines[0]["authorization"] == "[redacted]"
    assert "hf_abcdefghijklmnop" not in stream.getvalue()
    assert "hf_qrstuvwxyz123456" not in stream.getvalue()
    assert "dXNlcjpwYXNz" not in stream.getvalue()
    assert lines[1]["logger"] == "aiohttp.server"
