"""List the benchmarks, or run them: python -m bench [NAME ...]."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    available = names()
    if not argv:
        print("benchmarks:", ", ".join(available))
        print("run one: python -m bench.<name>; several: python -m bench NAME ...; all: all")
        return 0
    chosen = available if argv == ["all"] else argv
    status = 0
    for name in chosen:
        if name not in available:
            print(f"unknown benchmark {name!r}", file=sys.stderr)
            status = 2
            continue
        print(f"== bench.{name}", flush=True)
        status |= subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
