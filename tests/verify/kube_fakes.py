"""A recorded kubectl: answers `get pods|services|configmaps|nodes -o json` from fixtures."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
NODES = {"items": [{"status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]}}]}


def load(kind: str, profile: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{kind}-{profile}.json").read_text())
    return data


class RecordedKubectl:
    """Serves recorded JSON; `calls` keeps every argument list it was given."""

    def __init__(self, profile: str = "seed") -> None:
        self.docs = {k: load(k, profile) for k in ("pods", "services", "configmaps")}
        self.docs["nodes"] = copy.deepcopy(NODES)
        self.calls: list[list[str]] = []
        self.deleted: list[str] = []

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.docs["pods"]["items"]
        return items

    def pod(self, server: str) -> dict[str, Any]:
        label = "app.kubernetes.io/component"
        return next(p for p in self.pods() if p["metadata"]["labels"][label] == server)

    def __call__(self, args: list[str]) -> str:
        self.calls.append(args)
        verb = args[args.index("--context") + 2 :]
        verb = [a for a in verb if a not in ("--namespace",)]
        if "get" in args:
            kind = args[args.index("get") + 1]
            return json.dumps(self.docs[kind])
        if "delete" in args:
            name = args[args.index("pod") + 1]
            self.deleted.append(name)
            self._replace(name)
            return ""
        raise AssertionError(f"unexpected kubectl call {args}")

    def _replace(self, name: str) -> None:
        """The Deployment brings a new pod (new name and uid) in place of a deleted one."""
        for pod in self.pods():
            if pod["metadata"]["name"] == name:
                pod["metadata"]["name"] = name + "-new"
                pod["metadata"]["uid"] = "new-" + pod["metadata"]["uid"]
