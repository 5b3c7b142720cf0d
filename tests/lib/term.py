"""A program on a terminal, for the tests of interactive programs.

`Pty` runs a program on a pseudo-terminal and keeps every byte it wrote
(`out`), so a test can check the exact bytes (an escape sequence that
should never reach a terminal, say); `Tmux` runs it in a detached tmux
server, so a test can check what a person would see on the screen.
Every wait is for output or a screen that matches, with a timeout.

    p = Pty([CLIENT, "unix", "interactive", path])
    p.expect(rb"> ", 5); p.type("hello\\r"); p.wait(5); p.close()

    with Tmux([CLIENT, ...], dir) as tm:
        tm.wait_screen(lambda s: ...)
        tm.keys("text"); tm.keys("Tab", literal=False)
"""

import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


def plain(b):
    """Terminal output without cursor movements and CRs, as text."""
    return ANSI.sub(b"", b).decode("utf-8", "replace")


class Pty:
    """A program on a pseudo-terminal; everything it wrote is in self.out."""

    def __init__(self, argv, env=None, rows=30, cols=120):
        import fcntl
        import termios
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            e = dict(os.environ, TERM="xterm", INPUTRC="/dev/null",
                     LC_ALL="C.UTF-8")
            e.update(env or {})
            os.execve(argv[0], argv, e)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))
        self.out = b""
        self.status = None

    def read(self, timeout=0.1):
        """Read what the program writes, for at most timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.out += data

    def expect(self, pattern, timeout=5, start=0):
        """Wait until self.out[start:] matches the bytes regex pattern."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.out[start:])
            if m:
                return m
            self.read(0.05)
        return None

    def type(self, text):
        os.write(self.fd, text.encode("utf-8"))

    def wait(self, timeout=5):
        """Wait for the program to exit; its exit status, or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read(0.05)
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
        return None

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        os.close(self.fd)


def have_tmux():
    return shutil.which("tmux") is not None


class Tmux:
    """A program in a detached tmux server of its own (socket in dir)."""

    def __init__(self, argv, dir, width=100, height=20, env=None):
        self.sock = os.path.join(dir, "tmux.sock")
        self.tmux = ["tmux", "-S", self.sock, "-f", "/dev/null"]
        e = ["TERM=screen", "INPUTRC=/dev/null", "LC_ALL=C.UTF-8"]
        e += ["%s=%s" % kv for kv in (env or {}).items()]
        subprocess.run(self.tmux + ["new-session", "-d", "-x", str(width),
                                    "-y", str(height), "env"] + e + argv,
                       check=True, timeout=10)

    def screen(self):
        """The lines of the screen, right-stripped."""
        r = subprocess.run(self.tmux + ["capture-pane", "-p"],
                           stdout=subprocess.PIPE, timeout=10)
        return [l.rstrip() for l in
                r.stdout.decode("utf-8", "replace").splitlines()]

    def wait_screen(self, pred, timeout=5):
        """The screen once pred(screen) holds, or the last one seen."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.05)
        return self.screen()

    def keys(self, *keys, literal=True):
        """Type text (literal) or press keys by tmux's names (Enter, Tab)."""
        subprocess.run(self.tmux + ["send-keys"] + (["-l"] if literal
                                                     else []) + list(keys),
                       check=True, timeout=10)

    def stop(self):
        subprocess.run(self.tmux + ["kill-server"], timeout=10,
                       stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()
