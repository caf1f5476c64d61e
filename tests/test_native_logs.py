"""The command line's filter of TensorFlow's native logging: start-up noise dropped, everything else kept."""

import subprocess
import sys

import helpers

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796568824.876281    4851 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796568824.876669    4851 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "I0000 00:00:1796568826.622226    4851 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "W0000 00:00:1796568826.1    4851 gpu_device.cc:2] Cannot dlopen some GPU libraries.",
    "E0000 00:00:1796568827.424935    4851 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796568829.850538    4851 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
]
KEPT = [
    "14:53:47 INFO train: 360 examples from synthetic:sentiment/train",
    "E0000 00:00:1796568830.1    4851 bfc_allocator.cc:485] Allocator (cpu) ran out of memory trying to allocate",
    "error: data.train: missing.csv: no such file or directory",
    "Traceback (most recent call last):",
]

_WRITE_THROUGH_FILTER = """
import os, sys
from pipeline import native_logs
lines = sys.stdin.read()
with native_logs.filtered(enabled=sys.argv[1] == "filter"):
    os.write(2, lines.encode())
    if sys.argv[2] == "abort":
        os.abort()
"""


def _through_filter(text: str, mode: str = "filter", ending: str = "return") -> str:
    process = subprocess.run([sys.executable, "-c", _WRITE_THROUGH_FILTER, mode, ending], cwd=helpers.REPOSITORY,
                             input=text, capture_output=True, text=True, timeout=120)
    return process.stderr


def test_native_start_up_lines_are_dropped_and_other_lines_kept():
    mixed = [line for pair in zip(NOISE, KEPT + [""] * len(NOISE)) for line in pair if line]

    assert _through_filter("\n".join(mixed) + "\npartial line without end").splitlines() == (
        KEPT + ["partial line without end"])


def test_nothing_is_filtered_when_verbose():
    text = "\n".join(NOISE + KEPT) + "\n"

    assert _through_filter(text, mode="verbose") == text


def test_a_fatal_line_reaches_the_terminal_when_the_process_aborts():
    fatal = "F0000 00:00:1796568831.1    4851 check.cc:1] Check failed: shape.ok()"

    assert fatal in _through_filter(NOISE[1] + "\n" + fatal + "\n", ending="abort").splitlines()
