"""A stand-in ``helm`` executable (a bash script) for testing how we run helm as a process.

It is a real child process: it records its argv, the values files it was given (mode and content)
and what arrived on stdin, sleeps, traps SIGTERM and exits with configured codes. What it does per
operation is configured by files in its directory (see :meth:`FakeHelm.set`); ``calls()`` parses its
log. This tests our process handling (process groups, SIGTERM/SIGKILL, stdin passwords, ordering,
concurrency), not helm itself; the integration tests run the real helm.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

SCRIPT = r"""#!/usr/bin/env bash
dir="__DIR__"
log="$dir/calls.log"
op="$1"
case "$1" in
  repo) op="repo-$2" ;;
  registry) op="registry-$2" ;;
  upgrade) for a in "$@"; do [ "$a" = "--dry-run=server" ] && op="dry-run"; done ;;
esac
if [ -f "$dir/$op.ignore-term" ]; then
  trap '' TERM
else
  trap 'printf "TERM %s %s\n" "$$" "$op" >> "$log"; exit 143' TERM
fi
if [ "$1" = "version" ] && [ ! -f "$dir/version.stdout" ]; then
  printf 'v4.3.1'
  exit 0
fi
count=$(( $(cat "$dir/$op.count" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$dir/$op.count"
joined=""
for a in "$@"; do joined="$joined$a"$'\x1f'; done
printf 'START %s %s %s\n' "$$" "$op" "$joined" >> "$log"
prev=""
for a in "$@"; do
  if [ "$prev" = "-f" ]; then
    printf 'FILE %s %s %s\n' "$$" "$(stat -c '%a' "$a")" "$a" >> "$log"
    cp "$a" "$dir/captured-$(basename "$a")"
  fi
  prev="$a"
done
for a in "$@"; do
  if [ "$a" = "--password-stdin" ]; then cat > "$dir/stdin-$op"; fi
done
pick() { if [ -f "$dir/$op.$1.$count" ]; then echo "$dir/$op.$1.$count"; else echo "$dir/$op.$1"; fi; }
if [ -f "$(pick sleep)" ]; then
  sleep "$(cat "$(pick sleep)")" &
  wait $!
fi
[ -f "$(pick stdout)" ] && cat "$(pick stdout)"
[ -f "$(pick stderr)" ] && cat "$(pick stderr)" >&2
rc=$(cat "$(pick exit)" 2>/dev/null || echo 0)
printf 'END %s %s %s\n' "$$" "$op" "$rc" >> "$log"
exit "$rc"
"""


@dataclass(frozen=True)
class Call:
    pid: int
    op: str
    argv: list[str]


class FakeHelm:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.binary = directory / "helm"
        self.binary.write_text(SCRIPT.replace("__DIR__", str(directory)))
        self.binary.chmod(self.binary.stat().st_mode | stat.S_IXUSR)
        (directory / "calls.log").touch()

    def set(
        self,
        op: str,
        *,
        exit: int | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        sleep: float | None = None,
        ignore_term: bool = False,
        call: int | None = None,
    ) -> None:
        """Behaviour of ``op`` (``upgrade``, ``dry-run``, ``history``…); ``call``: the nth call only."""
        suffix = f".{call}" if call is not None else ""
        for kind, value in (("exit", exit), ("stdout", stdout), ("stderr", stderr), ("sleep", sleep)):
            if value is not None:
                (self.dir / f"{op}.{kind}{suffix}").write_text(str(value))
        if ignore_term:
            (self.dir / f"{op}.ignore-term").touch()

    def history(self, *entries: tuple[int, str], chart: str = "web-0.1.0", call: int | None = None) -> None:
        body = [{"revision": rev, "status": status, "chart": chart} for rev, status in entries]
        self.set("history", stdout=json.dumps(body), call=call)

    def lines(self) -> list[str]:
        return (self.dir / "calls.log").read_text().splitlines()

    def calls(self, op: str | None = None) -> list[Call]:
        result = []
        for line in self.lines():
            if not line.startswith("START "):
                continue
            _, pid, name, joined = line.split(" ", 3)
            argv = joined.split("\x1f")[:-1]
            if op is None or name == op:
                result.append(Call(int(pid), name, argv))
        return result

    def ops(self) -> list[str]:
        return [call.op for call in self.calls()]

    def terminated(self) -> list[str]:
        return [line.split()[2] for line in self.lines() if line.startswith("TERM ")]

    def files(self) -> list[tuple[str, str]]:
        """``(mode, path)`` of every values file passed with ``-f``."""
        return [(line.split()[2], line.split()[3]) for line in self.lines() if line.startswith("FILE ")]

    def captured(self, name: str) -> str:
        return (self.dir / f"captured-{name}").read_text()

    def stdin(self, op: str) -> str | None:
        path = self.dir / f"stdin-{op}"
        return path.read_text() if path.exists() else None

    def peak_concurrency(self, op: str | None = None) -> int:
        """Most helm processes (of ``op``) alive at once, from the start/end order in the log."""
        alive: set[str] = set()
        peak = 0
        for line in self.lines():
            parts = line.split()
            if parts[0] not in ("START", "END", "TERM") or (op is not None and parts[2] != op):
                continue
            if parts[0] == "START":
                alive.add(parts[1])
                peak = max(peak, len(alive))
            else:
                alive.discard(parts[1])
        return peak

    def alive(self) -> list[int]:
        pids = {call.pid for call in self.calls()}
        living = []
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            living.append(pid)
        return living
