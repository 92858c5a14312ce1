"""rtlab serve --workers' supervisor (rtlab/workers.py): how it ends its workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from rtlab import workers

IGNORES_SIGTERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def test_a_worker_that_does_not_stop_is_killed_and_said(capsys):
    """A worker deaf to SIGTERM (one hung in its stop) is killed at the deadline, and the
    supervisor says which, instead of a TimeoutExpired traceback with workers left over."""
    deaf = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    quits = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert deaf.stdout is not None and deaf.stdout.readline() == b"ready\n"
    for process in (deaf, quits):
        process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    codes = workers.stopped([deaf, quits], time.monotonic() + 0.5)
    assert codes == [1, -signal.SIGTERM]
    assert time.monotonic() - started < 10
    assert deaf.returncode == -signal.SIGKILL
    assert "worker 1 did not stop within" in capsys.readouterr().out
    deaf.stdout.close()
