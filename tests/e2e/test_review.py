"""Policy, quarantine and review end to end: the real client sees why a file is refused, a
security engineer approves or denies it through the admin API and CLI, and the same client call
then gets the new answer. Reviews cover exact bytes: a changed file under the same name is
judged afresh."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from proxy.admin.auth import hash_token
from proxy.cli import main as airlock_cli
from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.e2e.test_scanning import system_pickle
from tests.fakehub import FakeHub
from tests.http import free_port

TOKEN = "airlock-admin-test-token"
ADMIN_TOKENS = (f"secbot:{hash_token(TOKEN)}",)
REVIEW_URL = re.compile(r"Review: (http://\S+)/ui/decisions/(\d+)")


def _api(airlock: RunningAirlock, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{airlock.url}/admin/api{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _cli(airlock: RunningAirlock, *args: str) -> str:
    result = CliRunner().invoke(
        airlock_cli, list(args), env={"AIRLOCK_URL": airlock.url, "AIRLOCK_ADMIN_TOKEN": TOKEN}
    )
    assert result.exit_code == 0, result.output
    return result.output


def _refusal(client: HubClient, repo_id: str, filename: str) -> tuple[str, int]:
    error = client.run("download", repo_id=repo_id, filename=filename).error
    assert error is not None, f"{filename} was served"
    assert error["type"] == "GatedRepoError"
    found = REVIEW_URL.search(error["message"])
    assert found is not None, error["message"]
    return error["message"], int(found.group(2))


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_approve_and_the_same_call_succeeds(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    payload = system_pickle(marker)
    hub.add_repo("acme/evil", {"pytorch_model.bin": payload})
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS)
    client = HubClient(airlock.url, tmp_path / "home")

    message, decision_id = _refusal(client, "acme/evil", "pytorch_model.bin")
    assert f"Review: {airlock.url}/ui/decisions/{decision_id}" in message
    assert "posix.system" in message

    listed = _cli(airlock, "review", "list")
    assert f"#{decision_id}" in listed and "acme/evil" in listed and "block" in listed
    shown = _cli(airlock, "review", "show", str(decision_id))
    assert (
        "pickle-global-not-allowed" in shown
        and hub.file_sha256("acme/evil", "pytorch_model.bin") in shown
    )

    out = _cli(
        airlock, "review", "approve", str(decision_id), "--reason", "research sandbox, INC-42"
    )
    assert "now allow" in out
    result = client.run("download", repo_id="acme/evil", filename="pytorch_model.bin").ok()
    assert result["sha256"] == hub.file_sha256("acme/evil", "pytorch_model.bin")
    assert not marker.exists()
    assert _cli(airlock, "review", "list").strip() == ""  # it left the queue

    detail = _api(airlock, "GET", f"/decisions/{decision_id}")
    assert detail["decision"]["review_state"] == "approved"
    assert [(r["action"], r["reviewer"]) for r in detail["reviews"]] == [("approve", "secbot")]
    assert any(q["status"] == 403 for q in detail["requests"])
    events = _cli(airlock, "audit", "--since", "1h", "--json").splitlines()
    kinds = [json.loads(line)["kind"] for line in events]
    assert "review" in kinds and "decision" in kinds and "request" in kinds


def test_a_changed_blob_under_the_same_name_is_not_covered(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    hub.add_repo("acme/evil", {"pytorch_model.bin": system_pickle(tmp_path / "m1")})
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, revision_ttl_s=0.0)
    client = HubClient(airlock.url, tmp_path / "home")
    _, first = _refusal(client, "acme/evil", "pytorch_model.bin")
    _api(airlock, "POST", f"/decisions/{first}/approve", {"reason": "checked by hand"})
    client.run("download", repo_id="acme/evil", filename="pytorch_model.bin").ok()

    hub.commit("acme/evil", {"pytorch_model.bin": system_pickle(tmp_path / "m2")})
    client = HubClient(airlock.url, tmp_path / "home2")
    message, second = _refusal(client, "acme/evil", "pytorch_model.bin")
    assert second != first
    assert "approved" not in message


def test_deny_keeps_it_blocked_whatever_the_policy_says_later(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    hub.add_repo("stranger/model", {"config.json": CONFIG_JSON})
    policy = _policy(
        tmp_path,
        '[publishers]\nallow = ["acme/*"]\nquarantine_unknown = true\n'
        'reason = "models come from approved publishers only"\n',
    )
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=policy)
    client = HubClient(airlock.url, tmp_path / "home")
    message, decision_id = _refusal(client, "stranger/model", "config.json")
    assert "models come from approved publishers only" in message
    assert "stranger/model is not on the allow list" in message
    assert _api(airlock, "GET", "/decisions?state=quarantine")["decisions"][0]["id"] == (
        decision_id
    )

    _cli(airlock, "review", "deny", str(decision_id), "--reason", "unknown uploader")
    message, _ = _refusal(client, "stranger/model", "config.json")
    assert "denied by secbot (unknown uploader)" in message

    policy.write_text('[publishers]\nallow = ["*"]\nquarantine_unknown = true\n')
    assert _api(airlock, "POST", "/policy/reload")["source"] == str(policy)
    message, _ = _refusal(client, "stranger/model", "config.json")
    assert "denied by secbot" in message


def test_a_policy_reload_lets_a_quarantined_file_through(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    hub.add_repo("stranger/model", {"config.json": CONFIG_JSON})
    policy = _policy(tmp_path, '[publishers]\nallow = ["acme/*"]\nquarantine_unknown = true\n')
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=policy)
    client = HubClient(airlock.url, tmp_path / "home")
    _refusal(client, "stranger/model", "config.json")

    policy.write_text('[publishers]\nallow = ["acme/*", "stranger/*"]\nquarantine_unknown = true\n')
    _cli(airlock, "policy", "reload")
    client.run("download", repo_id="stranger/model", filename="config.json").ok()
    assert _api(airlock, "GET", "/decisions")["decisions"] == []


def test_a_bad_policy_reload_keeps_the_policy_in_force(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    policy = _policy(tmp_path, 'mode = "enforce"\n')
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=policy)
    before = _api(airlock, "GET", "/policy")["version"]
    policy.write_text('[formats]\npikle = "block"\n')
    with pytest.raises(urllib.error.HTTPError) as refused:
        _api(airlock, "POST", "/policy/reload")
    assert refused.value.code == 400
    assert "formats.pikle" in json.loads(refused.value.read())["error"]
    assert _api(airlock, "GET", "/policy")["version"] == before


def test_audit_mode_serves_the_file_and_records_the_decision(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    hub.add_repo("acme/evil", {"pytorch_model.bin": system_pickle(marker)})
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=_policy(tmp_path, 'mode = "audit"\n'))
    client = HubClient(airlock.url, tmp_path / "home")
    result = client.run("download", repo_id="acme/evil", filename="pytorch_model.bin").ok()
    assert result["sha256"] == hub.file_sha256("acme/evil", "pytorch_model.bin")
    assert not marker.exists()  # served as bytes, never loaded

    rows = list(airlock.registry().db.query("SELECT * FROM decisions"))
    assert len(rows) == 1 and rows[0]["verdict"] == "allow" and rows[0]["audit_only"] == 1
    reasons = json.loads(rows[0]["reasons"])
    assert reasons and all(r["enforced"] is False and r["verdict"] == "block" for r in reasons)
    assert "posix.system" in reasons[0]["detail"]
    allowed = _api(airlock, "GET", "/decisions?state=allow")["decisions"]
    assert allowed[0]["enforced"] is False


def test_the_admin_api_needs_a_token(airlock: RunningAirlock) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        request = urllib.request.Request(f"{airlock.url}/admin/api/decisions", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert "decisions" not in json.loads(refused.value.read())


def test_transformers_shows_why_a_file_was_refused(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    config = json.dumps(
        {
            "model_type": "bert",
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "vocab_size": 32,
        }
    ).encode()
    marker = tmp_path / "marker"
    hub.add_repo(
        "acme/bert-evil", {"config.json": config, "pytorch_model.bin": system_pickle(marker)}
    )
    hub.add_repo("badorg/bert", {"config.json": config})
    policy = _policy(
        tmp_path, '[publishers]\ndeny = ["badorg/*"]\nreason = "badorg is banned (SEC-7)"\n'
    )
    airlock = make_airlock(policy=policy)
    client = HubClient(airlock.url, tmp_path / "home")

    error = client.run("transformers_config", repo_id="badorg/bert").error
    assert error is not None
    assert "Airlock blocked config.json in badorg/bert@" in error["message"]
    assert "badorg is banned (SEC-7)" in error["message"]

    error = client.run("transformers_model", repo_id="acme/bert-evil").error
    assert error is not None
    assert "Airlock blocked pytorch_model.bin in acme/bert-evil@" in error["message"]
    assert "posix.system" in error["message"]
    assert f"Review: {airlock.url}/ui/decisions/" in error["message"]
    assert not marker.exists()


def test_serve_reloads_its_policy_on_sighup(hub: FakeHub, tmp_path: Path) -> None:
    policy = _policy(tmp_path, 'mode = "enforce"\n')
    port = free_port()
    env = {
        **os.environ,
        "AIRLOCK_UPSTREAM": hub.url,
        "AIRLOCK_DATA_DIR": str(tmp_path / "data"),
        "AIRLOCK_PORT": str(port),
        "AIRLOCK_ADMIN_TOKENS": ADMIN_TOKENS[0],
        "AIRLOCK_POLICY": str(policy),
    }
    log_path = tmp_path / "airlock.log"  # a file, not a pipe nobody drains while it runs
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"

    def policy_version() -> str:
        request = urllib.request.Request(
            f"{base}/admin/api/policy", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read())["version"])

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                before = policy_version()
                break
            except OSError:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "airlock serve did not start"
                time.sleep(0.2)
        policy.write_text('mode = "audit"\n')
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while policy_version() == before:
            assert time.monotonic() < deadline, "SIGHUP did not reload the policy"
            time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            stopped = proc.wait(timeout=20) is not None
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stopped = False
    assert stopped, "airlock serve did not stop on SIGTERM"


def test_serve_refuses_a_bad_policy_naming_the_key(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[findings]\nblock_at = "severe"\n')
    result = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "serve", "--policy", str(policy)],
        env={**os.environ, "AIRLOCK_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "findings.block_at" in result.stderr and "severe" in result.stderr


def test_serve_refuses_a_malformed_admin_account_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "serve"],
        env={
            **os.environ,
            "AIRLOCK_DATA_DIR": str(tmp_path / "data"),
            "AIRLOCK_ADMIN_USERS": "alice:plaintext-password",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: AIRLOCK_ADMIN_USERS entry 'alice'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bytes_seen_before_elsewhere_are_judged_for_this_repo_and_audited(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    """The same blob, already cleared for one repo, is decided again for another, and the
    refused request is on its decision's page."""
    hub.add_repo("acme/model", {"config.json": CONFIG_JSON})
    hub.add_repo("stranger/copy", {"config.json": CONFIG_JSON})
    policy = _policy(tmp_path, '[publishers]\nallow = ["acme/*"]\nquarantine_unknown = true\n')
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=policy)
    client = HubClient(airlock.url, tmp_path / "home")
    client.run("download", repo_id="acme/model", filename="config.json").ok()
    _, decision_id = _refusal(client, "stranger/copy", "config.json")
    detail = _api(airlock, "GET", f"/decisions/{decision_id}")
    assert detail["decision"]["repo_id"] == "stranger/copy"
    assert [q["status"] for q in detail["requests"]] == [403]
    assert airlock.blob_files("blobs") != []  # still served to acme/model
    client.run("download", repo_id="acme/model", filename="config.json").ok()


def test_the_model_card_and_commit_age_are_read_from_upstream(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    card = b"---\nlicense: cc-by-nc-4.0\ntags: [test]\n---\n# A model\n"
    hub.add_repo("acme/noncommercial", {"README.md": card, "config.json": CONFIG_JSON})
    hub.add_repo("acme/undocumented", {"config.json": CONFIG_JSON})
    hub.add_repo("acme/fresh", {"README.md": b"---\nlicense: mit\n---\n", "config.json": b"{}"})
    policy = _policy(
        tmp_path,
        '[documentation]\nlicenses = ["mit", "apache-2.0"]\n'
        '[age]\nmin_days = 36500\nmode = "audit"\n',  # longer than the fake hub has existed
    )
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=policy)
    client = HubClient(airlock.url, tmp_path / "home")

    message, _ = _refusal(client, "acme/noncommercial", "config.json")
    assert "license cc-by-nc-4.0 is not on the allowed list" in message
    client.run("download", repo_id="acme/noncommercial", filename="README.md").ok()
    message, _ = _refusal(client, "acme/undocumented", "config.json")
    assert "the repo has no README.md" in message

    # Age is in audit mode: the fresh commit is served, and the decision says why it would not be.
    client.run("download", repo_id="acme/fresh", filename="config.json").ok()
    allowed = _api(airlock, "GET", "/decisions?state=allow&repo=acme/fresh")["decisions"]
    config = next(d for d in allowed if d["path"] == "config.json")
    assert config["enforced"] is False
    assert any(
        r["rule"] == "age" and "days old" in r["detail"] and not r["enforced"]
        for r in config["reasons"]
    )


class SwitchableScanner:
    """A scanner whose rules change between versions, as a scanner upgrade would."""

    name = "switchable"

    def __init__(self) -> None:
        self.version = "1"

    def scan(self, path: Path, size_bytes: int, name: str) -> Any:
        from proxy.scan.report import Finding, Format, ScanReport, Severity

        evil = self.version == "2" and b"suspicious" in path.read_bytes()
        findings = (Finding("new-rule", Severity.HIGH, "caught by v2"),) if evil else ()
        return ScanReport(Format.TEXT, self.name, findings)

    def close(self) -> None:
        pass


def test_rescan_after_a_scanner_upgrade_changes_the_decisions(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    hub.add_repo("acme/m", {"notes.txt": b"suspicious content", "other.txt": b"fine"})
    scanner = SwitchableScanner()
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, scanner=scanner)
    client = HubClient(airlock.url, tmp_path / "home")
    client.run("download", repo_id="acme/m", filename="notes.txt").ok()
    client.run("download", repo_id="acme/m", filename="other.txt").ok()

    scanner.version = "2"
    assert "rescan started" in _cli(airlock, "rescan")
    deadline = time.monotonic() + 20
    while not _api(airlock, "GET", "/decisions")["decisions"]:
        assert time.monotonic() < deadline, "the rescan did not block the file"
        time.sleep(0.2)
    [blocked] = _api(airlock, "GET", "/decisions")["decisions"]
    assert blocked["path"] == "notes.txt" and blocked["verdict"] == "block"
    client = HubClient(airlock.url, tmp_path / "home2")
    message, _ = _refusal(client, "acme/m", "notes.txt")
    assert "caught by v2" in message
    client.run("download", repo_id="acme/m", filename="other.txt").ok()
    kinds = [e["kind"] for e in _api(airlock, "GET", "/audit")["entries"]]
    assert "rescan" in kinds


def test_the_webhook_hears_of_quarantines_and_reviews(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    from tests.loop_thread import LoopThread
    from tests.test_webhook import Receiver

    receiver = Receiver()
    loop = LoopThread("receiver")
    loop.start()
    try:
        loop.run(receiver.__aenter__())
        hub.add_repo("acme/evil", {"pytorch_model.bin": system_pickle(tmp_path / "marker")})
        airlock = make_airlock(admin_tokens=ADMIN_TOKENS, webhook_url=receiver.url)
        client = HubClient(airlock.url, tmp_path / "home")
        _, decision_id = _refusal(client, "acme/evil", "pytorch_model.bin")
        _refusal(client, "acme/evil", "pytorch_model.bin")  # no second quarantine event
        _api(airlock, "POST", f"/decisions/{decision_id}/deny", {"reason": "malware"})
        airlock.stop()  # drains the queue
        events = [json.loads(hit.body) for hit in receiver.hits]
        assert [e["event"] for e in events] == ["blob_quarantined", "review_action"]
        assert events[0]["data"]["id"] == decision_id
        assert events[0]["data"]["repo_id"] == "acme/evil"
        assert events[1]["data"]["action"] == "deny" and events[1]["data"]["reviewer"] == "secbot"
    finally:
        loop.run(receiver.__aexit__(None, None, None))
        loop.stop()


def test_a_denied_publisher_or_an_oversized_file_is_never_downloaded(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    hub.add_repo("badorg/model", {"model.safetensors": safetensors_bytes(4096)})
    hub.add_repo("acme/big", {"model.safetensors": safetensors_bytes(64 * 1024)})
    policy = _policy(
        tmp_path,
        '[publishers]\ndeny = ["badorg/*"]\nreason = "badorg is banned"\n'
        '[size]\nmax_file_bytes = 32768\nreason = "files over 32 KiB need an exception"\n',
    )
    airlock = make_airlock(admin_tokens=ADMIN_TOKENS, policy=policy)
    client = HubClient(airlock.url, tmp_path / "home")
    hub.clear_log()
    for repo_id, reason in (
        ("badorg/model", "badorg is banned (badorg/model matches deny 'badorg/*')"),
        ("acme/big", "files over 32 KiB need an exception"),
    ):
        error = client.run("download", repo_id=repo_id, filename="model.safetensors").error
        assert error is not None and error["type"] == "GatedRepoError"
        assert f"Airlock blocked model.safetensors in {repo_id}@" in error["message"]
        assert reason in error["message"] and "Nothing was downloaded" in error["message"]
    assert [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path] == []
    assert [r for r in hub.requests if r.origin != "hub"] == []  # no CDN fetch either
    assert airlock.blob_files("blobs") == [] and airlock.blob_files("quarantine") == []
    audit = _api(airlock, "GET", "/audit")["entries"]
    assert sum(e["status"] == 403 for e in audit if e["kind"] == "request") >= 2
