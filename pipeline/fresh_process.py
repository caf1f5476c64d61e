"""A fresh Python child process that ends when its parent does, even when the parent is killed.

The export self-check loads a SavedModel in a new interpreter; if the exporting process is killed
(Ctrl-C twice, `kill -9`, an out-of-memory kill), nothing should go on loading models in its name. The
child watches its parent in two ways: on Linux the kernel kills it when the parent dies (`prctl`
`PR_SET_PDEATHSIG`, set by the child itself before any other work), and everywhere a thread waits for the
end of its stdin, a pipe whose only writer is the parent, and exits the child when it closes.
"""

import os
import subprocess
import sys
import typing

# Prepended to the child's script; the parent's pid is argv[1] and the script's own arguments follow.
_WATCH_PARENT = r"""
import os as _os, sys as _sys, threading as _threading
_parent = int(_sys.argv.pop(1))
if _sys.platform.startswith("linux"):
    import ctypes as _ctypes, signal as _signal
    _ctypes.CDLL(None).prctl(1, int(_signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
if _os.getppid() != _parent:  # the parent died before the line above took effect
    _os._exit(3)


def _exit_when_parent_goes():
    # The raw descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader would abort
    # the interpreter's shutdown when the script ends normally.
    while _os.read(0, 65536):  # returns b"" when the parent closes the pipe, or dies
        pass
    _os._exit(3)


_threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
"""

EXIT_CODE_PARENT_GONE = 3


def start(script: str, arguments: typing.Sequence[str], *, output: typing.IO,
          environment: typing.Optional[dict] = None) -> subprocess.Popen:
    """Starts `python -c script arguments...`, bound to this process's life.

    Args:
        script: Python source; it sees its arguments as `sys.argv[1:]`.
        arguments: Strings passed to the script.
        output: Open file that receives the child's stdout and stderr (a file, not a pipe, so that a
            chatty child never blocks on a full pipe).
        environment: The child's environment (default: this process's).

    Returns:
        The running child. Call `finish` on it.
    """
    return subprocess.Popen([sys.executable, "-c", _WATCH_PARENT + script, str(os.getpid()), *arguments],
                            stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT, env=environment)


def finish(process: subprocess.Popen, timeout: float) -> int:
    """Waits for the child at most `timeout` seconds (then kills it) and returns its exit status.

    Raises:
        subprocess.TimeoutExpired: The child ran past `timeout` (it has been killed).
    """
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
