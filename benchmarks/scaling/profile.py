"""Summary of a py-spy profile in ``--format raw`` (collapsed stacks: ``frame;frame;… count``,
a frame being ``function (path:line)``): where the server's busy time goes, by function (own
time and time including callees) and by package."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
TOP = 20


def _frame_key(frame: str) -> tuple[str, str]:
    """``(function, path)`` of a frame (line numbers dropped: a function is one entry)."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match["function"], match["path"]


def package_of(path: str) -> str:
    """The package a source path belongs to: ``csms/protocol/x.py`` → ``csms.protocol``,
    ``websockets/asyncio/x.py`` → ``websockets``, ``asyncio/events.py`` → ``asyncio``."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif any(p.startswith("python3") for p in parts):
        index = max(i for i, p in enumerate(parts) if p.startswith("python3"))
        parts = parts[index + 1:]
    for ours in ("csms", "diagnostics", "simulators"):
        if ours in parts:
            parts = parts[parts.index(ours):]
            if len(parts) > 2:
                return f"{parts[0]}.{parts[1]}"
            return parts[0].removesuffix(".py")
    return parts[0].removesuffix(".py") if parts else "?"


def summarize(raw: str, top: int = TOP) -> dict[str, Any]:
    """Samples, and the busiest functions (own and inclusive) and packages, in % of samples."""
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        keys = [_frame_key(f) for f in frames]
        own[keys[-1]] += count
        packages[package_of(keys[-1][1])] += count
        for key in set(keys):
            inclusive[key] += count

    def share(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "own": [{"function": f, "path": p, "percent": share(n)}
                for (f, p), n in own.most_common(top)],
        "inclusive": [{"function": f, "path": p, "percent": share(n)}
                      for (f, p), n in inclusive.most_common(top)],
        "packages": [{"package": name, "percent": share(n)}
                     for name, n in packages.most_common(top)],
    }
