"""Helpers for the nats plugin tests: TAP, nats-server and asyncchatd
processes, a small asyncchat protocol client and a raw NATS publisher.

Standard library only.  Everything listens on 127.0.0.1; every process
started is stopped by pid at exit, whatever happens.
"""

import atexit
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

SRCDIR = os.environ.get("AC_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILDDIR = os.environ.get("AC_TOP_BUILDDIR") or SRCDIR
PLUGINDIR = os.environ.get("AC_PLUGIN_BUILDDIR") or os.path.join(
    BUILDDIR, "plugins", ".libs")
SERVER = os.path.join(BUILDDIR, "src", "server", "asyncchatd")
NATS_SERVER = os.environ.get("NATS_SERVER") or shutil.which("nats-server") \
    or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server")
        else None)

KEY = b"nats-test-key"
MAGIC = b"\x89\x50\x4e\x47\x0e\x0b\x1b\x0b"
FIXED = struct.Struct(">8sHHIIQI32s")  # 64 bytes, PROTOCOL.md
TEXT = "text/plain; charset=utf-8"

_procs = []     # every process started and not yet reaped
_tmpdirs = []


def _cleanup():
    for p in list(_procs):
        try:
            p.kill()
            p.wait(5)
        except Exception:
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def mkdtemp():
    d = tempfile.mkdtemp(prefix="acnats-", dir="/tmp")
    _tmpdirs.append(d)
    return d


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(cond, timeout, step=0.02):
    """Poll cond() until it is true or timeout seconds pass; its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


# -- TAP -------------------------------------------------------------------

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond:
            self.failed += 1
            if diag:
                self.diag(diag)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got %r, want %r" % (got, want))

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)
        sys.stdout.flush()


def skip_all(reason):
    print("1..0 # SKIP " + reason)
    sys.exit(0)


def main(cases):
    """Run every case function with a Tap; print the plan at the end."""
    if NATS_SERVER is None:
        skip_all("nats-server is not installed (apt-get install "
                 "nats-server)")
    if not os.path.exists(os.path.join(PLUGINDIR, "nats.so")):
        skip_all("the nats plugin was not built (configure found no "
                 "libnats: apt-get install libnats-dev)")
    if not os.path.exists(SERVER):
        skip_all("asyncchatd is not built")
    t = Tap()
    for case in cases:
        try:
            case(t)
        except Exception:
            t.ok(False, "%s raised" % case.__name__, traceback.format_exc())
            for n in Node.all:
                t.diag("--- log of %s ---\n%s" % (n.name, n.log()[-2000:]))
        finally:
            for n in list(Node.all):
                n.stop()
            Node.all = []
            for g in list(Gnatsd.all):
                g.stop()
            Gnatsd.all = []
    print("1..%d" % t.n)
    sys.exit(1 if t.failed else 0)


# -- processes -------------------------------------------------------------

def _start(args, logpath, cwd):
    logf = open(logpath, "ab")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf,
                         stderr=logf, cwd=cwd)
    logf.close()
    _procs.append(p)
    return p


def _stop(p, timeout=5.0):
    """SIGTERM, then SIGKILL after timeout; the exit status."""
    if p is None or p.poll() is not None:
        if p in _procs:
            _procs.remove(p)
        return None if p is None else p.returncode
    p.terminate()
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait(5)
    if p in _procs:
        _procs.remove(p)
    return rc


def _read_log(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Gnatsd:
    """One nats-server on 127.0.0.1 (optionally clustered by routes)."""

    all = []

    def __init__(self, port=None, cluster_port=None, routes=(), extra=()):
        self.dir = mkdtemp()
        self.extra = list(extra)
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self.logpath = os.path.join(self.dir, "nats.log")
        self.proc = None
        Gnatsd.all.append(self)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.cluster_port:
            args += ["--cluster_name", "acnats",
                     "--cluster", "nats://127.0.0.1:%d" % self.cluster_port]
            if self.routes:
                args += ["--routes", ",".join(
                    "nats://127.0.0.1:%d" % r for r in self.routes)]
        args += self.extra
        self.proc = _start(args, self.logpath, self.dir)
        if not wait_until(self._answers, timeout, 0.05):
            raise RuntimeError("nats-server did not start:\n" +
                               _read_log(self.logpath)[-2000:])
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError("nats-server exited:\n" +
                               _read_log(self.logpath)[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.settimeout(0.5)
                return s.recv(4096).startswith(b"INFO")
        except OSError:
            return False

    def stop(self):
        rc = _stop(self.proc)
        self.proc = None
        return rc

    def routed(self, n, timeout=10.0):
        """Wait until this server logs n route connections."""
        return wait_until(lambda: len(re.findall(
            r"Route connection created", _read_log(self.logpath))) >= n,
            timeout, 0.05)


class Node:
    """One asyncchatd with `load = broadcast, nats`."""

    all = []

    def __init__(self, name, servers, prefix="asyncchat", nats_opts=None,
                 key=KEY, start=True, server_opts=None):
        self.name = name
        self.dir = mkdtemp()
        self.conf = os.path.join(self.dir, "asyncchat.conf")
        self.logpath = os.path.join(self.dir, "server.log")
        self.key = key
        self.port = None
        self.proc = None
        opts = {"servers": ", ".join(servers), "subject_prefix": prefix,
                "node_name": name, "reconnect_wait": "200"}
        opts.update(nats_opts or {})
        lines = ["[server]", "listen = tcp://127.0.0.1:0",
                 "hmac_key = " + key.decode(), "log = stderr",
                 "log_level = info", "plugin_dir = " + PLUGINDIR]
        lines += ["%s = %s" % kv for kv in (server_opts or {}).items()]
        lines += ["", "[plugins]", "load = broadcast, nats", "",
                  "[plugin.nats]"]
        lines += ["%s = %s" % kv for kv in opts.items()]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        Node.all.append(self)
        if start:
            self.start()

    def start(self, timeout=10.0):
        self.proc = _start([SERVER, "-f", "-c", self.conf], self.logpath,
                           self.dir)
        m = wait_until(self._ready, timeout)
        if not m:
            raise RuntimeError("%s not ready:\n%s" %
                               (self.name, self.log()[-2000:]))
        self.port = int(m.group(1))
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited with %s:\n%s" % (
                self.name, self.proc.returncode, self.log()[-2000:]))
        return re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", self.log())

    def log(self):
        return _read_log(self.logpath)

    def wait_log(self, pattern, timeout=5.0, count=1):
        return wait_until(lambda: len(re.findall(pattern, self.log()))
                          >= count, timeout)

    def stop(self):
        rc = _stop(self.proc)
        self.proc = None
        return rc

    def client(self, name=None):
        c = Client(self.port, self.key, name or self.name)
        c.handshake()
        return c


def make_pki(d):
    """A throw-away CA, a server certificate for 127.0.0.1/localhost and a
    client certificate, made with the openssl program; the file paths, or
    None if openssl is missing."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    p = {k: os.path.join(d, k + ".pem") for k in (
        "ca", "ca-key", "srv", "srv-key", "cli", "cli-key")}
    ext = os.path.join(d, "san.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n")

    def run(*args):
        subprocess.run([openssl] + list(args), check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=acnats test CA", "-keyout", p["ca-key"], "-out", p["ca"])
    for who, cn in (("srv", "localhost"), ("cli", "asyncchatd")):
        csr = os.path.join(d, who + ".csr")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
            "-keyout", p[who + "-key"], "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey",
            p["ca-key"], "-CAcreateserial", "-days", "2", "-out", p[who],
            "-extfile", ext)
    return p


# -- the asyncchat protocol (PROTOCOL.md) ----------------------------------

def encode(type_, content, session_id=None, content_type=TEXT, key=KEY,
           extra=None):
    """One frame, its header JSON spelled as the Python peer spells it
    (extra: more header members)."""
    if isinstance(content, str):
        content = content.encode()
    header = {"type": type_, "content_type": content_type,
              "session_id": session_id}
    header.update(extra or {})
    header = json.dumps(header).encode()
    mac = hmac.new(key, header + content, hashlib.sha256).digest()
    return FIXED.pack(MAGIC, 1, 0, len(header), zlib.crc32(header),
                      len(content), zlib.crc32(content), mac) + \
        header + content


class Closed(Exception):
    pass


class Client:
    """A blocking client on one asyncchatd: handshake, send, receive."""

    def __init__(self, port, key, name):
        self.name = name
        self.key = key
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.buf = b""
        self.session_id = None
        self.queue = []

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _frame(self, deadline):
        """The next whole frame, decoded and checked; None at deadline."""
        while True:
            if len(self.buf) >= 64:
                (magic, ver, _, hlen, hcrc, clen, ccrc,
                 mac) = FIXED.unpack(self.buf[:64])
                if magic != MAGIC or ver != 1:
                    raise AssertionError("%s: bad frame" % self.name)
                if len(self.buf) >= 64 + hlen + clen:
                    h = self.buf[64:64 + hlen]
                    c = self.buf[64 + hlen:64 + hlen + clen]
                    self.buf = self.buf[64 + hlen + clen:]
                    want = hmac.new(self.key, h + c, hashlib.sha256).digest()
                    if zlib.crc32(h) != hcrc or zlib.crc32(c) != ccrc or \
                            not hmac.compare_digest(mac, want):
                        raise AssertionError("%s: frame fails its checks"
                                             % self.name)
                    return json.loads(h), c
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise Closed(self.name)
            self.buf += data

    def send(self, type_, content, content_type=TEXT):
        self.sock.sendall(encode(type_, content, self.session_id,
                                 content_type, self.key))

    def handshake(self, timeout=5.0):
        f = self._frame(time.monotonic() + timeout)
        if f is None or f[0].get("type") != "session_init":
            raise AssertionError("%s: no session_init (%r)" % (self.name, f))
        self.session_id = f[0]["session_id"]
        self.send("session_ack", "Session acknowledged")
        self.sync()

    def sync(self, timeout=5.0):
        """Ping and wait for the pong: the server has handled all we sent.
        Messages that came before it are kept for messages()."""
        self.send("heartbeat", "ping")
        deadline = time.monotonic() + timeout
        while True:
            f = self._frame(deadline)
            if f is None:
                raise AssertionError("%s: no pong" % self.name)
            if f[0].get("type") == "heartbeat" and f[1] == b"pong":
                return
            self.queue.append(f)

    def messages(self, timeout=0.0):
        """Every message received so far, waiting up to timeout for more;
        as a list of (sender session id, content bytes)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._frame(deadline if timeout else time.monotonic())
            if f is None:
                break
            self.queue.append(f)
        out = [(h.get("session_id"), c) for h, c in self.queue
               if h.get("type") in ("message", "chunk")]
        self.queue = []
        return out

    def collect(self, n, timeout):
        """Wait until n messages have come (or timeout); return them all."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            f = self._frame(deadline)
            if f is None:
                break
            if f[0].get("type") in ("message", "chunk"):
                got.append((f[0].get("session_id"), f[1]))
        return got


# -- raw NATS ----------------------------------------------------------------

def nats_publish(port, subject, payloads, timeout=5.0):
    """Publish each payload with a bare NATS protocol client (no headers),
    then PING and wait for the PONG so the server has routed them."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        buf = b""
        while b"\r\n" not in buf:
            data = s.recv(4096)
            if not data:
                raise Closed("nats")
            buf += data
        if not buf.startswith(b"INFO "):
            raise AssertionError("not a NATS server: %r" % buf[:40])
        out = [b'CONNECT {"verbose":false,"pedantic":false}\r\n']
        for p in payloads:
            out.append(b"PUB %s %d\r\n" % (subject.encode(), len(p)))
            out.append(p + b"\r\n")
        out.append(b"PING\r\n")
        s.sendall(b"".join(out))
        buf = b""
        deadline = time.monotonic() + timeout
        while b"PONG\r\n" not in buf:
            if b"-ERR" in buf:
                raise AssertionError("NATS said %r" % buf)
            if time.monotonic() > deadline:
                raise AssertionError("no PONG from NATS")
            data = s.recv(4096)
            if not data:
                raise Closed("nats")
            buf += data
