"""How a run ended: RunOutcome, and RunError for failures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("succeeded", "failed", "cancelled", "limit_exceeded")


@dataclass
class RunError:
    message: str  # "myscript:12: attempt to index a nil value"
    line: int | None
    traceback: list[dict] = field(default_factory=list)  # {"source", "line", "function"}
    kind: str = "error"  # "error" | "limit" | "syntax" | "cancelled"
    limit: str | None = None  # "instructions" | "memory" | "wall_seconds" | "output_bytes"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunOutcome:
    status: str  # one of STATUSES
    result: Any  # JSON-ready returned value (None if none; a list if several)
    error: RunError | None
    metrics: dict

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "metrics": self.metrics,
        }
