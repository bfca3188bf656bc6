"""Detection and false positives: Airlock against picklescan, modelscan, fickling and modelaudit
on the labelled corpus of tests/artifacts.py (malicious samples for every technique family of
docs/threats.md, benign files from real producers), side by side in one run.

    .venv/bin/python -m bench.scanners [--tools-dir DIR] [--keep] [--tmp-dir DIR] [--no-torch]

Each other scanner is pip-installed into its own throwaway venv (under the temporary directory,
or under --tools-dir to reuse them across runs); a tool that does not install is reported as
unavailable with pip's error line. Every tool is run once per corpus file (one process per file,
60 s cap) and its exit code / JSON report gives the verdict; Airlock runs `airlock scan --json`
once over all files (its row) and once per file (shown for a like-for-like process count).
Target: Airlock blocks every malicious file, no benign one, and is faster than picklescan.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, VENV_BIN, log, table, verdict, write_json
from tests.artifacts import CorpusEntry, write_corpus

TIMEOUT_S = 60.0
CLIENT_PYTHON = ROOT / ".venv-client" / "bin" / "python"
TOOLS = ("picklescan", "modelscan", "fickling", "modelaudit")
# No telemetry, no network: modelaudit otherwise posts usage events (and waits on DNS).
QUIET_ENV = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}


@dataclass
class Outcome:
    blocked: bool
    error: str = ""  # crashed, timed out or could not parse the file


@dataclass
class ToolRun:
    tool: str
    version: str = ""
    unavailable: str = ""
    seconds: float = 0.0
    outcomes: dict[Path, Outcome] = field(default_factory=dict)


# --- running one file ---------------------------------------------------------------------------


def _run(cmd: list[str], cwd: Path) -> tuple[int, str, str] | str:
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_S,
            env={**os.environ, **QUIET_ENV},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {TIMEOUT_S:.0f} s"
    return done.returncode, done.stdout, done.stderr


def _picklescan(bin_dir: Path, path: Path, work: Path) -> Outcome:
    # exit 1 = infected, 0 = clean (suspicious globals are not counted, as without --strict),
    # 2 = scan error; a dangerous import reported before the error still counts as blocked
    result = _run([str(bin_dir / "picklescan"), "-p", str(path)], work)
    if isinstance(result, str):
        return Outcome(False, result)
    code, out, err = result
    if code not in (0, 1):
        found = "FOUND" in out
        return Outcome(found, f"exit {code}: {_last_line(err or out)}")
    unparsed = "could not parse" in out + err or "ERROR" in out + err
    return Outcome(code == 1, "could not parse" if unparsed and code == 0 else "")


def _modelscan(bin_dir: Path, path: Path, work: Path) -> Outcome:
    # exit 0 = clean, 1 = issues, 2 = scan error, 3 = no supported file (skipped, not an error)
    report = work / "modelscan.json"
    report.unlink(missing_ok=True)
    cmd = [str(bin_dir / "modelscan"), "-p", str(path), "-r", "json", "-o", str(report)]
    result = _run(cmd, work)
    if isinstance(result, str):
        return Outcome(False, result)
    code, out, err = result
    data = _json_file(report)
    issues = bool(data.get("issues")) if data else code == 1
    errors = data.get("errors") if data else None
    if code not in (0, 1, 3):
        return Outcome(issues, f"exit {code}: {_last_line(err or out)}")
    return Outcome(issues, f"{len(errors)} scan error(s)" if errors and not issues else "")


def _fickling(bin_dir: Path, path: Path, work: Path) -> Outcome:
    # --check-safety: exit 0 = likely safe, 1 = unsafe, 2 = could not parse the pickle
    report = work / "fickling.json"
    cmd = [str(bin_dir / "fickling"), "--check-safety", "--json-output", str(report), str(path)]
    result = _run(cmd, work)
    if isinstance(result, str):
        return Outcome(False, result)
    code, out, err = result
    if code == 2:
        return Outcome(False, "could not parse")
    if code not in (0, 1) or "Traceback" in err:
        return Outcome(False, f"exit {code}: {_last_line(err or out)}")
    return Outcome(code == 1)


def _modelaudit(bin_dir: Path, path: Path, work: Path, levels: frozenset[str]) -> Outcome:
    # exit 0 = clean, 1 = issues found, 2 = errors; a file counts as blocked when an issue has
    # one of `levels` (critical only, as threats.md's second figure, or warning and above)
    report = work / "modelaudit.json"
    report.unlink(missing_ok=True)
    cmd = [str(bin_dir / "modelaudit"), "scan", "--format", "json", "--no-cache"]
    result = _run([*cmd, "-o", str(report), str(path)], work)
    if isinstance(result, str):
        return Outcome(False, result)
    code, out, err = result
    data = _json_file(report)
    if data is None:
        return Outcome(False, f"exit {code}: {_last_line(err or out)}")
    severities = {str(issue.get("severity", "")).lower() for issue in data.get("issues", [])}
    blocked = bool(severities & levels)
    if code == 2 or data.get("has_errors"):
        return Outcome(blocked, "" if blocked else "scan error")
    return Outcome(blocked)


def _airlock(bin_dir: Path, path: Path, work: Path) -> Outcome:
    return _airlock_batch(bin_dir, [path], work)[path]


def _airlock_batch(bin_dir: Path, paths: list[Path], work: Path) -> dict[Path, Outcome]:
    """`airlock scan --json PATH...`: one JSON object per file, exit 1 when any is blocked."""
    cmd = [str(bin_dir / "airlock"), "scan", "--json", *map(str, paths)]
    try:
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
    except OSError as exc:
        return {p: Outcome(False, str(exc)) for p in paths}
    verdicts = {}
    for line in done.stdout.splitlines():
        item = json.loads(line)
        verdicts[Path(item["path"]).resolve()] = item["verdict"] == "block"
    return {
        p: Outcome(verdicts[p.resolve()])
        if p.resolve() in verdicts
        else Outcome(False, f"no report (exit {done.returncode}): {_last_line(done.stderr)}")
        for p in paths
    }


def _json_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# --- installing the other tools -----------------------------------------------------------------


def _base_python() -> str:
    for candidate in (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}",
        Path(sys.base_prefix) / "bin" / "python3",
    ):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _install(tool: str, tools_dir: Path) -> tuple[Path, str, str]:
    """(bin dir, version, error): a venv with `pip install tool`, reused when present."""
    venv = tools_dir / tool
    bin_dir = venv / "bin"
    if not (bin_dir / tool).exists():
        log(f"installing {tool} into {venv}")
        made = subprocess.run(
            [_base_python(), "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return bin_dir, "", f"venv: {_last_line(made.stderr)}"
        pip = subprocess.run(
            [str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", tool],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if pip.returncode != 0:
            errors = [line for line in pip.stderr.splitlines() if line.startswith("ERROR")]
            return bin_dir, "", (errors[-1] if errors else _last_line(pip.stderr))[:300]
    show = subprocess.run(
        [str(bin_dir / "pip"), "show", tool], capture_output=True, text=True, check=False
    )
    version = next(
        (line.split(":", 1)[1].strip() for line in show.stdout.splitlines() if "Version:" in line),
        "",
    )
    if not (bin_dir / tool).exists():
        return bin_dir, version, f"{tool} installed no `{tool}` command"
    return bin_dir, version, ""


# --- the run ------------------------------------------------------------------------------------


Scanner = Callable[[Path, Path, Path], Outcome]


def _per_file(run: ToolRun, scan: Scanner, bin_dir: Path, files: list[Path], work: Path) -> None:
    started = time.perf_counter()
    for path in files:
        run.outcomes[path] = scan(bin_dir, path, work)
    run.seconds = time.perf_counter() - started


def _rates(run: ToolRun, entries: list[CorpusEntry]) -> dict[str, Any]:
    malicious = [e for e in entries if e.label == "malicious"]
    benign = [e for e in entries if e.label == "benign"]
    caught = [e for e in malicious if run.outcomes[e.path].blocked]
    false_pos = [e for e in benign if run.outcomes[e.path].blocked]
    errors = [e for e in entries if run.outcomes[e.path].error]
    return {
        "tool": run.tool,
        "version": run.version,
        "detection": len(caught) / len(malicious),
        "false_positives": len(false_pos) / len(benign),
        "blocked_malicious": len(caught),
        "malicious": len(malicious),
        "blocked_benign": len(false_pos),
        "benign": len(benign),
        "errors": len(errors),
        "seconds": run.seconds,
        "missed": sorted(e.technique for e in malicious if e not in caught),
        "false_positive_files": sorted(e.technique for e in false_pos),
        "error_files": {e.technique: run.outcomes[e.path].error for e in errors},
        "missed_by_family": dict(Counter(e.family for e in malicious if e not in caught)),
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scanners", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--tools-dir", type=Path, help="keep the tools' venvs here (reused)")
    parser.add_argument("--tmp-dir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-torch", action="store_true", help="no real torch/joblib files")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="airlock-bench-scanners-", dir=args.tmp_dir))
    try:
        torch_python = os.environ.get("AIRLOCK_TORCH_PYTHON")
        if torch_python is None and CLIENT_PYTHON.exists():
            torch_python = str(CLIENT_PYTHON)
        if args.no_torch:
            torch_python = None
        log(f"writing the corpus under {tmp / 'corpus'} (torch python: {torch_python})")
        entries = write_corpus(tmp / "corpus", torch_python=torch_python)
        files = [e.path for e in entries]
        labels = Counter(e.label for e in entries)
        log(f"{len(files)} files: {labels['malicious']} malicious, {labels['benign']} benign")
        work = tmp / "work"
        work.mkdir()
        tools_dir = args.tools_dir or tmp / "tools"
        tools_dir.mkdir(parents=True, exist_ok=True)

        runs: list[ToolRun] = []
        batch = ToolRun("airlock")
        started = time.perf_counter()
        batch.outcomes = _airlock_batch(VENV_BIN, files, work)
        batch.seconds = time.perf_counter() - started
        runs.append(batch)
        log(f"airlock (one process): {batch.seconds:.1f} s")
        each = ToolRun("airlock (per file)")
        _per_file(each, _airlock, VENV_BIN, files, work)
        runs.append(each)
        log(f"airlock (per file): {each.seconds:.1f} s")

        scanners: dict[str, Scanner] = {
            "picklescan": _picklescan,
            "modelscan": _modelscan,
            "fickling": _fickling,
        }
        for tool in [t for t in args.tools.split(",") if t]:
            bin_dir, version, error = _install(tool, tools_dir)
            if error:
                log(f"{tool} unavailable: {error}")
                runs.append(ToolRun(tool, version, unavailable=error))
                continue
            if tool == "modelaudit":
                _modelaudit_both(runs, bin_dir, version, files, work)
            else:
                tool_run = ToolRun(tool, version)
                _per_file(tool_run, scanners[tool], bin_dir, files, work)
                runs.append(tool_run)
            log(f"{tool} {version}: {runs[-1].seconds:.1f} s")
        marker_ran = (tmp / "corpus" / "MARKER").exists()
        return _report(runs, entries, torch_python, marker_ran)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _modelaudit_both(
    runs: list[ToolRun], bin_dir: Path, version: str, files: list[Path], work: Path
) -> None:
    """One modelaudit process per file, read at two thresholds (no second run)."""
    critical = ToolRun("modelaudit (critical)", version)
    warning = ToolRun("modelaudit (warning+)", version)
    started = time.perf_counter()
    levels = frozenset({"critical"})
    wider = frozenset({"critical", "error", "high", "warning"})
    for path in files:
        report = work / "modelaudit.json"
        outcome = _modelaudit(bin_dir, path, work, levels)
        critical.outcomes[path] = outcome
        data = _json_file(report) or {}
        severities = {str(i.get("severity", "")).lower() for i in data.get("issues", [])}
        warning.outcomes[path] = Outcome(bool(severities & wider), outcome.error)
    critical.seconds = warning.seconds = time.perf_counter() - started
    runs.extend([critical, warning])


def _report(
    runs: list[ToolRun], entries: list[CorpusEntry], torch_python: str | None, marker_ran: bool
) -> int:
    rows = [["tool", "version", "detection", "false positives", "errors", "wall time"]]
    results: list[dict[str, Any]] = []
    for tool_run in runs:
        if tool_run.unavailable:
            rows.append([tool_run.tool, "-", "unavailable", "-", "-", tool_run.unavailable[:60]])
            results.append({"tool": tool_run.tool, "unavailable": tool_run.unavailable})
            continue
        rates = _rates(tool_run, entries)
        results.append(rates)
        rows.append(
            [
                tool_run.tool,
                tool_run.version or "-",
                f"{rates['detection']:.1%} ({rates['blocked_malicious']}/{rates['malicious']})",
                f"{rates['false_positives']:.1%} ({rates['blocked_benign']}/{rates['benign']})",
                str(rates["errors"]),
                f"{tool_run.seconds:.1f} s",
            ]
        )
    airlock = results[0]
    picklescan = next((r for r in results if r["tool"] == "picklescan" and "seconds" in r), None)
    detection_ok = airlock["detection"] == 1.0
    fp_ok = airlock["false_positives"] == 0.0
    faster_ok = picklescan is not None and airlock["seconds"] < picklescan["seconds"]
    families = Counter((e.label, e.family) for e in entries)
    report = {
        "corpus": {
            "files": len(entries),
            "torch_python": torch_python,
            "by_family": {
                f"{label}/{family}": n for (label, family), n in sorted(families.items())
            },
        },
        "timeout_s": TIMEOUT_S,
        "mode": "one process per file for every tool; airlock also once over all files",
        "results": results,
        "targets": {
            "airlock_detection_100": detection_ok,
            "airlock_false_positives_0": fp_ok,
            "airlock_faster_than_picklescan": faster_ok,
            "no_payload_ran": not marker_ran,
        },
    }
    path = write_json("scanners", report)
    malicious = sum(1 for e in entries if e.label == "malicious")
    print(f"\nSCANNERS: {len(entries)} files ({malicious} malicious, {len(entries) - malicious} "
          f"benign), one process per file, {TIMEOUT_S:.0f} s cap per file")  # fmt: skip
    print(table(rows))
    print("errors = crashed, timed out or could not parse (counted as not blocked)")
    print(f"Airlock detection 100%: {verdict(detection_ok)}")
    print(f"Airlock false positives 0%: {verdict(fp_ok)}")
    print(f"Airlock (one process) faster than picklescan: {verdict(faster_ok)}")
    print(f"no payload ran: {verdict(not marker_ran)}")
    if airlock["missed"] or airlock["false_positive_files"]:
        print(f"Airlock missed: {airlock['missed']}; blocked benign: "
              f"{airlock['false_positive_files']}")  # fmt: skip
    print(f"results: {path}")
    return 0 if detection_ok and fp_ok and faster_ok and not marker_ran else 1


def main(argv: list[str] | None = None) -> int:
    return run(_parse(argv))


if __name__ == "__main__":
    sys.exit(main())
