"""The asyncchatd server harness of every Python test suite.

A test program is a list of case functions run by main():

    def case_echo(t):
        with Server(plugins=["echo"]) as srv:
            c = srv.client("tcp")               # handshake done
            t.ok(c.sync() == [], "nothing before the pong")
    main([case_echo])

Each t.ok()/t.eq() prints one TAP line (tap.py); an exception inside a
case prints one "not ok" with the traceback and the logs of the servers
still running as diagnostics, and the next case runs.  After each case
every server and other Process it left running is stopped, and a server
that did not stop cleanly or printed a sanitizer report fails a line.
Every process started is killed at exit, whatever happens.

Where the tree is: SRCDIR, BUILDDIR (AC_TOP_SRCDIR, AC_TOP_BUILDDIR from
make), SERVER, CLIENT, PLUGINDIR, TESTPLUGINDIR, VECTORS.  Configuration
files name plugins through plugin_dir() and test_plugin(), short links
under /tmp, so that no line of them grows with the build directory's path.
"""

import os
import re
import socket
import subprocess
import sys
import time

import acproto
import procs
from procs import (Process, _live, _tmpdirs, free_port,  # noqa: F401
                   run, wait_until)
from procs import cleanup as _cleanup
from tap import Skip, Tap, case_label, skip_all  # noqa: F401
import tap

SRCDIR = os.environ.get("AC_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILDDIR = os.environ.get("AC_TOP_BUILDDIR") or SRCDIR
PLUGINDIR = os.environ.get("AC_PLUGIN_BUILDDIR") or os.path.join(
    BUILDDIR, "plugins", ".libs")
TESTPLUGINDIR = os.path.join(BUILDDIR, "tests", "plugins", ".libs")
SERVER = os.path.join(BUILDDIR, "src", "server", "asyncchatd")
CLIENT = os.path.join(BUILDDIR, "src", "client", "asyncchat")
VECTORS = os.path.join(SRCDIR, "tests", "data", "frames.json")

# Bounds for waiting on the server; generous next to the configured timeouts
# but short enough that a hung server fails a case quickly.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

_links = {}     # real plugin directory -> its short link


def _short_link(target, name):
    """A link to directory target in one short temporary directory."""
    if target not in _links:
        if "dir" not in _links:
            _links["dir"] = procs.mkdtemp("acp-")
        link = os.path.join(_links["dir"], name)
        os.symlink(target, link)
        _links[target] = link
    return _links[target]


def plugin_dir():
    """The shipped plugins' directory, by a short path for configs.

    PLUGINDIR is as long as the build directory's path; a short link keeps
    the configs (and the messages that quote them) the same wherever the
    tree is built.  (asyncchatd once refused lines over 198 characters.)"""
    return _short_link(PLUGINDIR, "p")


def web_dir():
    """The web page's files (web/ of the source tree), by a short path
    for configs (see plugin_dir())."""
    return _short_link(os.path.join(SRCDIR, "web"), "w")


def test_plugin(name):
    """Absolute path of a check-only test plugin (tests/plugins/.libs), by
    a short link (see plugin_dir())."""
    return os.path.join(_short_link(TESTPLUGINDIR, "t"), name + ".so")


def mkdtemp(prefix="ace2e-"):
    """A short temporary directory under /tmp (sun_path is 108 bytes)."""
    return procs.mkdtemp(prefix)


def ipv6_available():
    """True if a TCP socket can be bound to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


def main(cases):
    """Run every case function with a Tap; print the plan; exit."""
    rc = tap.run(cases, after_case=_stop_leftovers,
                 error_diag=_server_logs_for_diag)
    _cleanup()
    sys.exit(rc)


def _server_logs_for_diag():
    out = []
    for s in Server.instances:
        if s.active:
            out.append("--- server log %s ---\n%s" % (s.logpath, s.log()[-3000:]))
    return "\n" + "\n".join(out) if out else ""


SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|"
                       r"ThreadSanitizer|==\d+==ERROR")


def _stop_leftovers(t):
    """After a case: kill what is still running, report what went wrong
    with the servers themselves (a stop that was not clean, sanitizer
    reports).  These lines appear only on failure."""
    for s in Server.instances:
        if s.active:
            s.kill()
        for p in s.problems:
            t.ok(False, p, s.stderr_tail())
        text = s.stderr_text()
        m = SANITIZER.search(text)
        if m:
            t.ok(False, "server output has no sanitizer report",
                 text[max(0, m.start() - 200):m.start() + 3000])
    Server.instances[:] = []
    Process.stop_all()


def ini_value(v):
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)


class ServerError(Exception):
    pass


class Server(Process):
    """One asyncchatd process with its own config, log and temporary dir.

    server: dict of [server] keys (a list value makes repeated lines);
    listen defaults to tcp://127.0.0.1:0, a unix socket in the temp dir
    and ws://127.0.0.1:0 (web_root: the source tree's web/).
    plugins: list of names/paths for [plugins] load.
    sections: {"NAME": {key: value}} for [plugin.NAME].

    Readiness is read from the log: "listening on tcp://127.0.0.1:PORT",
    "listening on tcp://[::1]:PORT", "listening on unix://PATH" and
    "listening on ws://127.0.0.1:PORT", one line per listener (the config
    asks for port 0: an ephemeral port); a wss:// listener a test lists
    itself is found too (wss_port).
    """

    instances = []
    start_timeout = START_TIMEOUT

    def __init__(self, plugins=("echo",), server=None, sections=None,
                 tcp=True, unix=True, tcp6=False, ws=True,
                 key="default-key", extra_conf="", start=True):
        self.dir = mkdtemp()
        Process.__init__(self, logpath=os.path.join(self.dir, "server.log"),
                         cwd=self.dir, name="asyncchatd")
        # stdout and stderr go to stderr_path; logpath is read for
        # readiness (the same file, unless a test sets `log = FILE`).
        self.confpath = os.path.join(self.dir, "asyncchat.conf")
        self.unix_path = os.path.join(self.dir, "s.sock") if unix else None
        self.key = key
        self.port = None
        self.port6 = None
        self.ws_port = None
        self.wss_port = None
        self.problems = []
        self.want_tcp = tcp
        self.want_tcp6 = tcp6
        self.want_ws = ws
        self.plugins = list(plugins)
        self.server_opts = dict(server or {})
        self.sections = dict(sections or {})
        self.extra_conf = extra_conf
        Server.instances.append(self)
        self.write_config()
        if start:
            self.start()

    # -- config ----------------------------------------------------------
    def config_text(self, plugins=None, server=None, sections=None,
                    extra_conf=None, tcp=None, unix=None, tcp6=None,
                    ws=None):
        plugins = self.plugins if plugins is None else plugins
        server = self.server_opts if server is None else server
        sections = self.sections if sections is None else sections
        extra_conf = self.extra_conf if extra_conf is None else extra_conf
        tcp = self.want_tcp if tcp is None else tcp
        tcp6 = self.want_tcp6 if tcp6 is None else tcp6
        ws = self.want_ws if ws is None else ws
        unix = (self.unix_path is not None) if unix is None else unix
        lines = ["# written by tests/lib/harness.py", "[server]"]
        if "listen" not in server:
            if tcp:
                lines.append("listen = tcp://127.0.0.1:0")
            if tcp6:
                lines.append("listen = tcp://[::1]:0")
            if unix:
                lines.append("listen = unix://" + self.unix_path)
            if ws:
                lines.append("listen = ws://127.0.0.1:0")
        listens = server.get("listen") or []
        if isinstance(listens, str):
            listens = [listens]
        web = ("listen" not in server and ws) or \
            any(str(u).startswith(("ws://", "wss://")) for u in listens)
        if web and "web_root" not in server:
            lines.append("web_root = " + web_dir())
        if "hmac_key" not in server and "hmac_key_file" not in server \
                and self.key is not None:
            lines.append("hmac_key = " + self.key)
        if "log" not in server:
            lines.append("log = stderr")
        if "plugin_dir" not in server:
            lines.append("plugin_dir = " + plugin_dir())
        for k, v in server.items():
            if v is None:
                continue
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                lines.append("%s = %s" % (k, ini_value(one)))
        lines.append("")
        lines.append("[plugins]")
        if plugins:
            lines.append("load = " + ", ".join(plugins))
        for name, opts in sections.items():
            lines.append("")
            lines.append("[plugin.%s]" % name)
            for k, v in opts.items():
                lines.append("%s = %s" % (k, ini_value(v)))
        lines.append("")
        if extra_conf:
            lines.append(extra_conf)
        return "\n".join(lines) + "\n"

    def write_config(self, text=None, **kw):
        if text is None:
            text = self.config_text(**kw)
        # readiness waits for the ws:// listener the file asks for
        self.expect_ws = "\nlisten = ws://127.0.0.1:0\n" in text
        with open(self.confpath, "w") as f:
            f.write(text)
        return text

    # -- process ---------------------------------------------------------
    @property
    def stderr_path(self):
        return self.outpath

    @stderr_path.setter
    def stderr_path(self, path):
        self.outpath = path

    def stderr_text(self):
        return procs.read_text(self.stderr_path)

    def stderr_tail(self):
        return "--- %s ---\n%s" % (self.stderr_path, self.stderr_text()[-3000:])

    def command(self, args):
        """The argv that runs asyncchatd ARGS -c CONF."""
        return [SERVER] + list(args) + ["-c", self.confpath]

    def start(self, wait=True, args=("-f",)):
        """Start asyncchatd ARGS -c CONF (-f: foreground, log to stderr)."""
        if not os.path.exists(SERVER):
            raise ServerError("server binary not built: %s" % SERVER)
        self.launch(self.command(args))
        if wait:
            self.wait_ready(self.start_timeout)
        return self

    def wait_ready(self, timeout=None):
        """Wait for every configured listener; learn the ephemeral ports."""
        if timeout is None:
            timeout = self.start_timeout
        deadline = time.monotonic() + timeout
        started_by = None
        while True:
            log = self.log()
            m = re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", log)
            if m:
                self.port = int(m.group(1))
            m = re.search(r"listening on tcp://\[::1\]:(\d+)", log)
            if m:
                self.port6 = int(m.group(1))
            m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", log)
            if m:
                self.ws_port = int(m.group(1))
            m = re.search(r"listening on wss://127\.0\.0\.1:(\d+)", log)
            if m:
                self.wss_port = int(m.group(1))
            # a unix listener is ready when logged (its file exists from
            # bind(), before listen(): a connect then would be refused)
            unix_ok = not self.unix_path or \
                ("listening on unix://" + self.unix_path) in log
            ws_ok = not self.expect_ws or self.ws_port
            ready = (not self.want_tcp or self.port) and \
                (not self.want_tcp6 or self.port6) and unix_ok and ws_ok
            if ready:
                # asyncchatd logs its listeners before it installs its
                # signal handlers and writes its pid file, then logs
                # "... started (pid N, ...)": wait briefly for that line
                # too, so that a test's first signal cannot meet the
                # default action.  (A server without the line loses 1 s.)
                if started_by is None:
                    started_by = time.monotonic() + 1.0
                if re.search(r"\bstarted\b", log) or time.monotonic() > started_by:
                    return self
            rc = self.poll()
            if rc is not None:
                raise ServerError("asyncchatd exited with status %s before it "
                                  "was ready; log:\n%s" % (rc, log[-3000:]))
            if time.monotonic() > deadline:
                raise ServerError("asyncchatd not ready after %.1f s; log:\n%s"
                                  % (timeout, log[-3000:]))
            time.sleep(0.02)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        # a server left running by a case must stop cleanly on SIGTERM
        if self.active:
            rc, clean = self.stop()
            if not clean:
                self.problems.append("server stops within %.0f s of SIGTERM" % STOP_TIMEOUT)
            elif rc != 0:
                self.problems.append("server exits 0 on SIGTERM (got %s)" % rc)

    def check(self, args=("-t",), timeout=10.0):
        """Run asyncchatd ARGS -c CONF (default -t); return (status, output)."""
        return run_server_cmd(list(args) + ["-c", self.confpath], timeout,
                              cwd=self.dir)

    def start_fails(self, timeout=10.0):
        """Run asyncchatd -f -c CONF expecting it to exit; (status, output)."""
        return self.check(("-f",), timeout)

    # -- clients ---------------------------------------------------------
    def addr(self, transport="tcp"):
        if transport == "unix":
            return ("unix", self.unix_path)
        if transport == "tcp6":
            return ("tcp", "::1", self.port6)
        if transport == "ws":
            return ("ws", "127.0.0.1", self.ws_port)
        if transport == "wss":
            return ("wss", "127.0.0.1", self.wss_port, None)
        return ("tcp", "127.0.0.1", self.port)

    def client(self, transport="tcp", key=Ellipsis, handshake=True, **kw):
        """Connect a client (and by default complete the handshake).
        "ws" and "wss" go through a WebSocket upgrade (wss wants ctx=,
        an ssl.SSLContext)."""
        if key is Ellipsis:
            key = self.key
        kw.setdefault("name", transport)
        addr = self.addr(transport)
        if transport == "wss":
            addr = addr[:3] + (kw.pop("ctx"),)
        c = acproto.Client.connect(addr, key=key, **kw)
        if handshake:
            try:
                c.handshake()
            except Exception:
                c.close()
                raise
        return c


def run_server_cmd(args, timeout=10.0, cwd=None):
    """Run asyncchatd with args; return (status, stdout+stderr text)."""
    if not os.path.exists(SERVER):
        raise ServerError("server binary not built: %s" % SERVER)
    p = subprocess.Popen([SERVER] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         cwd=cwd)
    _live.append(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        _live.remove(p)
        return None, out.decode("utf-8", "replace")
    _live.remove(p)
    return p.returncode, out.decode("utf-8", "replace")


def transports():
    """The transports every protocol case runs on: TCP, Unix, and a
    WebSocket (ws://, the protocol's bytes in binary messages)."""
    return ["tcp", "unix", "ws"]
