"""Keeps TensorFlow's native start-up logging off the terminal, so that commands print only what they mean.

TensorFlow 2.21 logs from C++ through Abseil before `absl::InitializeLog()` runs, and such messages go to
file descriptor 2 whatever `TF_CPP_MIN_LOG_LEVEL` says: `oneDNN custom operations are on`, `Could not find
cuda drivers`, `failed call to cuInit`, `oneDNN supports DT_BOOL only on platforms with AVX-512`, ...
Python cannot reach that logger, so `filtered()` puts a small filter process between file descriptor 2 and
the terminal for the duration of a command. The filter drops native INFO and WARNING lines and the known
start-up noise at ERROR level, and passes everything else on unchanged: Python logging, tracebacks, and
native errors that are real (a failed allocation, a fatal check). Being a separate process, it still
delivers the last lines of a process that aborts.
"""

import contextlib
import logging
import os
import subprocess
import sys
import typing

# Runs in the filter process (`python -I -c`): standard library only, reads the pipe until every writer
# has closed it, and ignores Ctrl-C so that the command's own "interrupted" line still gets through.
_FILTER_SCRIPT = r"""
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
NATIVE = re.compile(rb"^([IWEF])\d{4} [\d:.]+ +\d+ [^\]]*\] ")  # I0000 00:00:1796568824.876281  4851 port.cc:153]
NOISE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\)|To enable the following "
                   rb"instructions: .*rebuild TensorFlow with the appropriate compiler flags|Improper call to "
                   rb"JPEG library in state \d+$)")  # the last: libjpeg on a bad file, which predict reports
ERROR_NOISE = re.compile(rb"failed call to cuInit|oneDNN supports DT_|Unable to register cu(DNN|FFT|BLAS) "
                         rb"factory|computation placer already registered|TF-TRT Warning")
HOLD = tuple(b"IWEFT")  # a partial line starting so may become a native line: wait for its end


def keep(line):
    if NOISE.match(line):
        return False
    native = NATIVE.match(line)
    if native is None:
        return True
    severity = native.group(1)
    return severity == b"F" or (severity == b"E" and not ERROR_NOISE.search(line))


out = sys.stdout.buffer
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, pending = (pending + chunk).split(b"\n")
    out.write(b"".join(line + b"\n" for line in lines if keep(line)))
    if pending and pending[0] not in HOLD:
        out.write(pending)
        pending = b""
    out.flush()
if pending and keep(pending):
    out.write(pending)
    out.flush()
"""

DEBUG_VARIABLE = "PIPELINE_DEBUG"


def wanted(verbose: bool) -> bool:
    """Whether to filter: unless `--verbose` was given or PIPELINE_DEBUG is set."""
    return not verbose and not os.environ.get(DEBUG_VARIABLE)


@contextlib.contextmanager
def filtered(enabled: bool = True) -> typing.Iterator[None]:
    """Routes file descriptor 2 through the filter process while the block runs (nothing when not enabled).

    Environment set here reaches TensorFlow only if it is imported inside the block: TF_CPP_MIN_LOG_LEVEL=2
    (for the messages logged after Abseil's initialization) when filtering, nothing otherwise.
    """
    if not enabled:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _python_loggers_at(logging.ERROR, _TENSORFLOW_LOGGERS), _through_filter_process():
        yield


_TENSORFLOW_LOGGERS = ("tensorflow", "absl")  # TensorFlow's Python-side INFO lines (`Assets written to: ...`)


@contextlib.contextmanager
def _python_loggers_at(level: int, names: typing.Sequence[str]) -> typing.Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, previous in zip(loggers, levels):
            logger.setLevel(previous)


@contextlib.contextmanager
def _through_filter_process() -> typing.Iterator[None]:
    sys.stderr.flush()
    try:
        terminal = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    try:
        process = subprocess.Popen([sys.executable, "-I", "-c", _FILTER_SCRIPT], stdin=subprocess.PIPE,
                                   stdout=terminal, stderr=terminal)
    except OSError:  # no filter rather than no command
        os.close(terminal)
        yield
        return
    os.dup2(process.stdin.fileno(), 2)
    process.stdin.close()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last writer here goes; the filter drains it and exits
        os.close(terminal)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a child process of the command still holds the pipe
            pass
