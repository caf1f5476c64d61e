"""Interrupted exports leave nothing behind: dead exports' temporary folders go, the self-check child dies."""

import os
import re
import subprocess
import sys
import time

import pytest

import helpers
from pipeline import export
from pipeline import fresh_process


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _host() -> str:
    return re.match(r"^\.tmp-\d+-[0-9a-f]+-pid\d+@(.+)$", export._temporary_name(1)).group(1)


def test_temporary_folder_names_its_owner():
    assert re.match(rf"^\.tmp-7-[0-9a-f]{{8}}-pid{os.getpid()}@.+$", export._temporary_name(7))


def test_next_export_removes_only_folders_of_dead_exports_of_this_machine(tmp_path):
    names = {
        "dead": f".tmp-3-0123abcd-pid{_dead_pid()}@{_host()}",
        "live": f".tmp-3-4567abcd-pid{os.getppid()}@{_host()}",  # a concurrent export still running
        "this process": f".tmp-4-89abcdef-pid{os.getpid()}@{_host()}",
        "other machine": f".tmp-3-0123abcd-pid{_dead_pid()}@elsewhere.example",
        "unowned": ".tmp-2-deadbeef",
        "version": "2",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"")

    removed = export.remove_abandoned_temporary_folders(str(tmp_path))

    assert removed == [names["dead"]]
    assert sorted(os.listdir(tmp_path)) == sorted(name for key, name in names.items() if key != "dead")


_PARENT = """
import os, sys, time
from pipeline import fresh_process
child = fresh_process.start("import time; time.sleep(600)", [], output=open(os.devnull, "wb"))
print(child.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_self_check_child_dies_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], cwd=helpers.REPOSITORY, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _running(child)

    parent.kill()  # kill -9: no clean-up runs in the parent
    parent.wait()

    deadline = time.monotonic() + 60  # only guards against waiting forever; the child goes at once
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def test_finish_returns_the_exit_status_and_the_child_sees_its_arguments(tmp_path):
    with open(tmp_path / "log.txt", "wb") as log:
        process = fresh_process.start("import sys; print(sys.argv[1:]); sys.exit(5)", ["a", "b"], output=log)
        assert fresh_process.finish(process, timeout=120) == 5
    assert (tmp_path / "log.txt").read_text().strip() == "['a', 'b']"
