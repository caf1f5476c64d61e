"""Profile summary: where a `train --profile` trace spent its time, by TensorFlow op type, without a viewer.

Usage (from the repository root):
    python benchmarks/profile_summary.py runs/<name>/profile [--top 15]

Reads the newest `*.xplane.pb` under the folder (TensorFlow's own trace format, parsed with the protobuf
classes TensorFlow ships) and prints one JSON line: the op types that took the most time on the CPU compute
threads (milliseconds summed over threads, and the share of all op time), the number of ops run, and the
trace file. Only ops are counted (`name:OpType` events); the executor's own wrapper events are not. For the
timeline itself, open the folder in TensorBoard's Profile tab (README, "Performance").
"""

import argparse
import collections
import glob
import json
import os
import sys

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY_ROOT not in sys.path:  # `import pipeline` without installing it (benchmarks/harness.py does the same)
    sys.path.insert(0, REPOSITORY_ROOT)

from pipeline import compat  # noqa: E402  (imports TensorFlow only when a trace is read)

COMPUTE_LINE_PREFIX = "tf_Compute"  # the executor's compute threads on the host plane


def newest_trace(folder: str) -> str:
    """The most recent `*.xplane.pb` under `folder` (at any depth)."""
    traces = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
    if not traces:
        raise FileNotFoundError(f"{folder}: no *.xplane.pb trace here; train with --profile first")
    return max(traces, key=os.path.getmtime)


def op_times(path: str) -> tuple[collections.Counter, collections.Counter]:
    """Milliseconds and counts per op type on the compute threads of one trace file."""
    space = compat.read_profiler_trace(path)
    milliseconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith(COMPUTE_LINE_PREFIX):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or "::" in name:  # ops are named `node/name:OpType`
                    continue
                op_type = name.rsplit(":", 1)[1]
                milliseconds[op_type] += event.duration_ps / 1e9
                counts[op_type] += 1
    return milliseconds, counts


def summarize(folder: str, top: int) -> dict:
    """The summary of the newest trace under `folder`."""
    path = newest_trace(folder)
    milliseconds, counts = op_times(path)
    total = sum(milliseconds.values())
    return {
        "trace": path,
        "op_milliseconds": round(total, 1),
        "ops_run": sum(counts.values()),
        "top_op_types": [{"op_type": op_type, "milliseconds": round(value, 1),
                          "share": round(value / total, 4) if total else 0.0, "count": counts[op_type]}
                         for op_type, value in milliseconds.most_common(top)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="a run's profile/ folder (or any folder holding *.xplane.pb)")
    parser.add_argument("--top", type=int, default=15, help="op types listed (default: %(default)s)")
    arguments = parser.parse_args(argv)
    try:
        print(json.dumps(summarize(arguments.folder, arguments.top)))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
