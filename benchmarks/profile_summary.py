"""Where the time goes in a py-spy profile of the Sluiceway contender (``--profile DIR``).

``python -m benchmarks.profile_summary DIR/medium-fast-sluiceway.speedscope.json`` prints, for
the server, the workers that scored mini-batches (together) and the spare workers the server
started meanwhile (importing their modules), the share of their samples in
each step of a job: reading the input files, ``predict``, formatting and writing the output
rows, part files, the join of the parts (the commit), staging, messages between scheduler and
workers, the job's database and logs, polling and idle waits. A sample counts in the first
step (in the order of :data:`STEPS`) whose pattern one of its frames matches; the rest is
"other". py-spy records threads while they run (not while they sleep in the kernel), in
seconds: the shares are of CPU time.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# (step, pattern over "function file"), tried in this order for each sample's frames, from
# the innermost one outwards.
STEPS: list[tuple[str, str]] = [
    ("reading input files", r"\bread_csv\b|_read_table |read_parquet"),
    ("predict", r"\bpredict(_proba)?\b.*(sklearn|mlflow_model)"),
    ("formatting rows", r"format_rows|plain_table_lines|\bto_csv\b"),
    ("part files", r" .*runtime/parts\.py"),
    ("joining parts (commit)", r" .*scheduler/commit\.py"),
    ("staging", r" .*scheduler/staging\.py"),
    (
        "messages (pickle, socket)",
        r"\b(send|recv|_send_bytes|_recv_bytes|dumps|loads)\b .*connection\.py",
    ),
    ("job database", r" .*store/(jobs|db)\.py|sqlalchemy"),
    ("job logs", r" .*scheduler/joblog\.py"),
    ("polling the pool", r"\bpoll\b .*worker_pool\.py"),
    ("model load (init)", r"\b(init|load_scorer|load_model)\b"),
    ("imports", r"_find_and_load|exec_module"),
]
WHO = ("server", "workers", "spares")
IDLE = r"\b(select|poll|wait|sleep|epoll|accept|_wait_for_tstate_lock|recv_into)\b"


def summarize(path: Path) -> dict[str, Counter[str]]:
    """Samples per step, for ``server`` and ``workers``."""
    data: dict[str, Any] = json.loads(path.read_text())
    frames = [f"{f.get('name', '?')} {f.get('file', '')}" for f in data["shared"]["frames"]]
    compiled = [(step, re.compile(pattern)) for step, pattern in STEPS]
    idle = re.compile(IDLE)
    found: dict[str, Counter[str]] = defaultdict(Counter)
    server = _server_pid(data)
    scoring = {  # processes that ran a mini-batch; the others are spares, importing
        _pid(profile.get("name", ""))
        for profile in data["profiles"]
        if any("run_task" in frames[i] for stack in profile["samples"] for i in stack)
    }
    for profile in data["profiles"]:
        pid = _pid(profile.get("name", ""))
        who = "server" if pid == server else "workers" if pid in scoring else "spares"
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            names = [frames[i] for i in reversed(stack)]  # innermost first
            found[who][_step(names, compiled, idle)] += weight
    return found


def _step(
    names: list[str], compiled: list[tuple[str, re.Pattern[str]]], idle: re.Pattern[str]
) -> str:
    for step, pattern in compiled:
        if any(pattern.search(name) for name in names):
            return step
    if names and idle.search(names[0]):
        return "idle (waiting)"
    return "other"


def _pid(name: str) -> int | None:
    match = re.search(r"Process (\d+)", name)
    return int(match.group(1)) if match else None


def _server_pid(data: dict[str, Any]) -> int | None:
    """The process with the most threads is the server (workers run one or two)."""
    threads: Counter[int] = Counter()
    for profile in data["profiles"]:
        pid = _pid(profile.get("name", ""))
        if pid is not None:
            threads[pid] += 1
    return threads.most_common(1)[0][0] if threads else None


def render(path: Path) -> str:
    """A Markdown table: each step's share of each kind of process's samples."""
    found = summarize(path)
    kinds = [who for who in WHO if who in found]
    lines = [
        f"{path.name}",
        "",
        "| step | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    totals = {who: sum(found[who].values()) or 1.0 for who in kinds}
    for step in [step for step, _ in STEPS] + ["idle (waiting)", "other"]:
        cells = []
        for who in kinds:
            share = found[who][step] / totals[who]
            cells.append(f"{share:.0%}" if share >= 0.005 else "-")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines.append("| CPU seconds sampled | " + " | ".join(f"{totals[w]:.1f}" for w in kinds) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(render(Path(argument)) + "\n")
