"""Private temporary directories for a deploy's values files, and the cleanup of a killed operator's.

The values files hold the DTO's ``valuesYaml`` (which may carry secrets the controller did not flag),
so they live in a directory of mode 0700, files 0600, removed after helm ran. An operator killed
mid-deploy (SIGKILL, OOM) leaves its directories behind; the next operator process removes them at
start.

A directory is named after the process that owns it: ``octo-values-<pid>.<start>-<release>-<random>``,
``<start>`` being the process's start time (``/proc/<pid>/stat``, clock ticks since boot). The pid
alone is not enough: in the shipped image tini starts the operator with the same pid every time, and
``/tmp/operator`` is an emptyDir that outlives a container restart, so a predecessor's directory
would look alive forever. Pid and start time together name one process; a directory whose owner is
not running with that start time is left over.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from communication_operator.workloads.values import RenderedValues

VALUES_DIR_PREFIX = "octo-values-"
_PROC = Path("/proc")


def process_start_time(pid: int, proc: Path = _PROC) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), ``None`` without such a process or ``/proc``."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 2 (the command) is in parentheses and may contain spaces or ')'; field 22 is the start time.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def owner_tag(pid: int | None = None) -> str:
    """``<pid>.<start time>`` of this process (only ``<pid>`` where the start time cannot be read)."""
    pid = os.getpid() if pid is None else pid
    started = process_start_time(pid)
    return f"{pid}.{started}" if started else str(pid)


@contextlib.contextmanager
def values_files(rendered: RenderedValues, temp_root: Path | None = None) -> Iterator[list[Path]]:
    """The values documents as files (mode 0600) in a private temporary directory, removed afterwards."""
    prefix = f"{VALUES_DIR_PREFIX}{owner_tag()}-{rendered.release}-"
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=temp_root))  # mode 0700
    try:
        paths = []
        for name, text in rendered.files():
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            paths.append(path)
        yield paths
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def remove_orphaned_values_dirs(temp_root: Path | None = None) -> int:
    """Remove the values directories whose owning process no longer runs; returns how many."""
    removed = 0
    for directory in Path(temp_root or tempfile.gettempdir()).glob(f"{VALUES_DIR_PREFIX}*"):
        owner = directory.name.removeprefix(VALUES_DIR_PREFIX).split("-", 1)[0]
        if owner_alive(owner) is not False:
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed += 1
    return removed


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by a directory's owner tag runs; ``None`` for a name not ours."""
    pid_text, _, started = owner.partition(".")
    if not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if started:
        return process_start_time(pid) == started
    # A name without start time (older versions, or no /proc). Where we can read start times, our own
    # pid on such a name is a predecessor's (ours carry the start time): the tini case.
    if pid == os.getpid() and process_start_time(pid) is not None:
        return False
    return _process_alive(pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
