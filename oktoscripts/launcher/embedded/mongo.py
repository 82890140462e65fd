"""The embedded SecantusDB server: a MongoDB wire-protocol server on WiredTiger."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


def secantus_binary() -> str:
    """The SecantusDB server launcher installed by the secantusdb package."""
    beside_python = Path(sys.executable).parent / "secantusd-py"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("secantusd-py")
    if not found:
        raise FileNotFoundError("secantusd-py not found: install the secantusdb package")
    return found


@dataclass(frozen=True)
class MongoServerConfig:
    """Where the embedded MongoDB-compatible server listens and stores its data."""

    storage_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def command(self) -> list[str]:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        # --config pointing at an empty file stops the launcher from picking up
        # a secantusd.toml from the current directory or the user's home.
        empty_config = self.storage_dir.parent / "secantusd.toml"
        if not empty_config.exists():
            empty_config.write_text("")
        return [
            secantus_binary(),
            "--config",
            str(empty_config),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.storage_dir),
            "--log-level",
            "WARNING",
            # Standalone, not a one-node replica set: the platform uses no change
            # streams nor transactions, and a replica set keeps an oplog entry
            # per written document, about a quarter of the server's cost of a
            # device upsert (measured with bench.devices).
            "--standalone",
        ]
