"""Runs inside the *client* environment (Python 3.11, huggingface_hub 2.x), as a user's machine
would, never inside Airlock's. Each call prints one JSON object on stdout.

    python client_driver.py '{"op": "download", "repo_id": "acme/m", "filename": "config.json"}'

Errors are reported as data (exception type, its base classes and message), so tests can assert
on exactly what the user would see.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _error(exc: BaseException) -> dict[str, Any]:
    cause = exc.__cause__ or exc.__context__
    return {
        "type": type(exc).__name__,
        "bases": [cls.__name__ for cls in type(exc).__mro__],
        "message": str(exc),
        "cause": str(cause) if cause is not None else None,
    }


def download(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(
        args["repo_id"],
        args["filename"],
        revision=args.get("revision"),
        repo_type=args.get("repo_type"),
        token=args.get("token", False),
        cache_dir=args.get("cache_dir"),
    )
    return {"path": path, "sha256": _sha256(path), "size": os.path.getsize(path)}


def snapshot(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        args["repo_id"],
        revision=args.get("revision"),
        repo_type=args.get("repo_type"),
        token=args.get("token", False),
        cache_dir=args.get("cache_dir"),
    )
    files = {
        str(p.relative_to(folder)): _sha256(p)
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }
    return {"folder": folder, "files": files}


def model_info(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import HfApi

    info = HfApi(token=args.get("token", False)).model_info(
        args["repo_id"], revision=args.get("revision"), files_metadata=True
    )
    siblings = [
        {
            "rfilename": s.rfilename,
            "size": s.size,
            "blob_id": s.blob_id,
            "lfs_sha256": s.lfs.sha256 if s.lfs else None,
        }
        for s in info.siblings or []
    ]
    return {"sha": info.sha, "siblings": siblings}


def list_tree(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import HfApi

    entries = HfApi(token=args.get("token", False)).list_repo_tree(
        args["repo_id"],
        path_in_repo=args.get("path"),
        recursive=args.get("recursive", False),
        revision=args.get("revision"),
        repo_type=args.get("repo_type"),
    )
    return {"paths": [e.path for e in entries]}


def paths_info(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import HfApi

    entries = HfApi(token=args.get("token", False)).get_paths_info(
        args["repo_id"], args["paths"], revision=args.get("revision"), expand=True
    )
    return {
        "entries": [
            {"path": e.path, "type": type(e).__name__, "xet_hash": getattr(e, "xet_hash", None)}
            for e in entries
        ]
    }


def file_exists(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import HfApi

    api = HfApi(token=args.get("token", False))
    return {"exists": api.file_exists(args["repo_id"], args["filename"])}


def refs(args: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import HfApi

    found = HfApi(token=args.get("token", False)).list_repo_refs(
        args["repo_id"], repo_type=args.get("repo_type"), include_pull_requests=True
    )
    return {
        "branches": {b.name: b.target_commit for b in found.branches},
        "tags": {t.name: t.target_commit for t in found.tags},
        "pull_requests": {p.name: p.target_commit for p in found.pull_requests or []},
    }


def concurrent_download(args: dict[str, Any]) -> dict[str, Any]:
    """`clients` threads, each with its own cache folder, download the same file at once."""
    from huggingface_hub import hf_hub_download

    barrier = threading.Barrier(args["clients"])
    results: list[dict[str, Any]] = [{} for _ in range(args["clients"])]

    def one(index: int) -> None:
        barrier.wait()
        try:
            path = hf_hub_download(
                args["repo_id"],
                args["filename"],
                revision=args.get("revision"),
                cache_dir=os.path.join(args["cache_dir"], str(index)),
                token=False,
            )
            results[index] = {"sha256": _sha256(path)}
        except Exception as exc:
            results[index] = {"error": _error(exc)}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args["clients"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"results": results}


OPS = {
    "download": download,
    "snapshot": snapshot,
    "model_info": model_info,
    "list_tree": list_tree,
    "paths_info": paths_info,
    "file_exists": file_exists,
    "refs": refs,
    "concurrent_download": concurrent_download,
}


def transformers_config(args: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(args["repo_id"], revision=args.get("revision"))
    return {"model_type": config.model_type}


def transformers_model(args: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(args["repo_id"], revision=args.get("revision"))
    return {"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters())}


OPS["transformers_config"] = transformers_config
OPS["transformers_model"] = transformers_model


def main() -> None:
    args = json.loads(sys.argv[1])
    try:
        result = OPS[args["op"]](args)
    except Exception as exc:
        result = {"error": _error(exc)}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
