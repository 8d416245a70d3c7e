"""Start a component and record its own peak memory: ``python -m scmib.runner.launch USAGE -- CMD...``.

Linux carries a process's memory high-water mark across ``exec``: a job
started straight from the runner reports at least the runner's own peak (a
runner holding 500 MB made every job "use" 500 MB). This small launcher starts
fresh, forks and execs the command, and writes the command's own rusage
(``maxrss_kb``, ``cpu_s``) as JSON to USAGE. It exits as the command did
(killed by the same signal, so a memory kill still reads 137).
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main(argv: list[str]) -> None:
    usage_path, separator, *cmd = argv
    if separator != "--" or not cmd:
        raise SystemExit("usage: python -m scmib.runner.launch USAGE -- CMD...")
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    _, status, usage = os.wait4(pid, 0)
    with open(usage_path, "w") as handle:
        json.dump({"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, handle)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number != signal.SIGKILL:  # SIGKILL cannot be caught and needs no reset
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
