"""Child processes, temporary directories and waiting, for every suite.

Every process a test starts through this module is stopped by pid and
every directory it made is removed when the test program exits, whatever
happens (normal exit, exception, SIGTERM or SIGHUP from make).

    d = mkdtemp("acx-")                      # short: /tmp/acx-XXXXXXXX
    p = Process([prog, "-f"], os.path.join(d, "prog.log"), cwd=d)
    m = p.wait_log(r"listening on tcp://127\\.0\\.0\\.1:(\\d+)", 10)
    rc, clean = p.stop()                     # SIGTERM, SIGKILL after 5 s
    rc, out, err = run([prog, "--help"])     # a short-lived program
    wait_until(lambda: cond(), 5.0)          # poll for an event, bounded

Temporary directories live under /tmp, not $TMPDIR, whatever the build
directory: a unix socket path (sun_path) must stay under 108 bytes.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_live = []      # every Popen started and not yet reaped
_tmpdirs = []   # every temporary directory made


def cleanup():
    """Kill every child still running and remove every temporary dir."""
    for p in list(_live):
        try:
            p.kill()
            p.wait(2)
        except Exception:
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(cleanup)


def _on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def mkdtemp(prefix="actest-"):
    """A short temporary directory under /tmp, removed at exit."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    _tmpdirs.append(d)
    return d


def wait_until(cond, timeout, step=0.02):
    """Poll cond() until it is true or timeout seconds pass; its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def read_text(path):
    """A file's text ("" if it cannot be read); bad UTF-8 replaced."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def spawn(argv, logpath, cwd=None, env=None):
    """Start argv with stdout and stderr appended to logpath; the Popen,
    registered to be killed at exit."""
    with open(logpath, "ab") as logf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=logf, cwd=cwd, env=env)
    _live.append(p)
    return p


def reaped(p):
    """Forget a Popen that has been waited for."""
    if p in _live:
        _live.remove(p)


def run(argv, stdin_data=None, timeout=60, stdin=None, cwd=None, env=None,
        wrap=None):
    """Run a program to its end; (status, stdout text, stderr text).

    With AC_TEST_WRAPPER set (such as "libtool --mode=execute valgrind -q
    --error-exitcode=9"), a program under the directory wrap (by default
    the build tree) runs under that checker.
    """
    wrapper = os.environ.get("AC_TEST_WRAPPER", "").split()
    if wrap is None:
        wrap = os.environ.get("AC_TOP_BUILDDIR") or os.getcwd()
    if wrapper and wrap and argv[0].startswith(wrap):
        argv = wrapper + list(argv)
    p = subprocess.run(argv, input=stdin_data,
                       stdin=stdin if stdin_data is None else None,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, cwd=cwd, env=env)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


class Process:
    """A long-running child whose output goes to a log file.

    Every Process launched is in Process.instances until stop_all(): the
    server harness stops those a test case left running when it ends.
    Without argv nothing is started until launch(argv).  Its stdout and
    stderr go to outpath, which is logpath unless changed before launch.
    """

    instances = []

    def __init__(self, argv=None, logpath=None, cwd=None, env=None,
                 name=None):
        self.logpath = logpath
        self.outpath = logpath
        self.cwd = cwd
        self.env = env
        self.name = name
        self.proc = None
        self.returncode = None
        if argv is not None:
            self.launch(argv)

    def launch(self, argv):
        """Start argv, its output appended to outpath."""
        if self.name is None:
            self.name = os.path.basename(argv[0])
        self.returncode = None
        self.proc = spawn(argv, self.outpath, self.cwd, self.env)
        Process.instances.append(self)
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def active(self):
        """True from launch until the end has been seen."""
        return self.proc is not None and self.returncode is None

    def log(self):
        """Everything the process has written so far."""
        return read_text(self.logpath)

    def _reaped(self, rc):
        self.returncode = rc
        reaped(self.proc)

    def poll(self):
        """The exit status, or None while it runs."""
        if self.proc is None:
            return None
        if self.returncode is None:
            rc = self.proc.poll()
            if rc is not None:
                self._reaped(rc)
        return self.returncode

    def wait_log(self, pattern, timeout=3.0, start=0, count=1):
        """Wait until the log (from offset start) matches regex pattern
        count times; the last of those matches, or None if that has not
        happened within timeout or the process ended without it."""
        found = []

        def seen():
            # Not self.poll(): an end the test did not ask for stays for
            # stop() to see (the harness reports it there).
            ended = self.proc.poll() is not None
            ms = list(re.finditer(pattern, self.log()[start:]))
            if len(ms) >= count:
                found.append(ms[count - 1])
                return True
            return ended
        wait_until(seen, timeout)
        return found[0] if found else None

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=5.0):
        """Wait for the end; its status, or None if it still runs."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reaped(rc)
        return rc

    def stop(self, timeout=5.0):
        """SIGTERM by pid, SIGKILL after timeout; (status, clean)."""
        if self.proc is None or self.poll() is not None:
            return self.returncode, True
        self.signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            return self.returncode, False
        return rc, True

    def kill(self):
        """SIGKILL by pid, and reap."""
        if not self.active:
            return
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            rc = -9
        self._reaped(rc)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    @classmethod
    def stop_all(cls):
        """Stop every Process still running; forget them all."""
        for p in cls.instances:
            p.stop()
        cls.instances[:] = []
