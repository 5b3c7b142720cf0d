"""Small helpers for the client tests: the wire format (PROTOCOL.md), TAP
output, and finding the programs in the build tree. Written for these tests
only; the codec under test is the C one in the client."""

import hashlib
import hmac
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

MAGIC = bytes.fromhex("89504e470e0b1b0b")
FIXED = struct.Struct("!8sHHIIQI32s")  # 64 bytes


def encode(key, mtype, content, session_id=None,
           content_type="application/octet-stream", extra=None,
           header_json=None):
    """One frame, header spelled as the Python peer spells it."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if header_json is None:
        header = {"type": mtype, "content_type": content_type,
                  "session_id": session_id}
        if extra:
            header.update(extra)
        header_json = json.dumps(header).encode("utf-8")
    mac = hmac.new(key, header_json + content, hashlib.sha256).digest()
    fixed = FIXED.pack(MAGIC, 1, 0, len(header_json),
                       zlib.crc32(header_json), len(content),
                       zlib.crc32(content), mac)
    return fixed + header_json + content


class BadFrame(ValueError):
    """A frame that fails one of the receiver's checks."""


def decode_one(key, data):
    """Decode the frame at the start of data, the way the Python peer does:
    return (header dict, content, frame length) or None if incomplete."""
    if len(data) < FIXED.size:
        return None
    magic, version, _, hlen, hcrc, clen, ccrc, mac = FIXED.unpack(
        data[:FIXED.size])
    if magic != MAGIC:
        raise BadFrame("bad_magic")
    if version != 1:
        raise BadFrame("bad_version")
    end = FIXED.size + hlen + clen
    if len(data) < end:
        return None
    hj = data[FIXED.size:FIXED.size + hlen]
    content = data[FIXED.size + hlen:end]
    if zlib.crc32(hj) != hcrc:
        raise BadFrame("header_crc")
    if zlib.crc32(content) != ccrc:
        raise BadFrame("content_crc")
    if not hmac.compare_digest(
            hmac.new(key, hj + content, hashlib.sha256).digest(), mac):
        raise BadFrame("hmac")
    return json.loads(hj), content, end


class Tap:
    """Minimal TAP producer: plan at the end, ok/not ok lines, skips."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name))
        if not cond:
            self.failed += 1
            if diag:
                for line in str(diag).splitlines()[-40:]:
                    print("# " + line)
        sys.stdout.flush()
        return cond

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why))
        sys.stdout.flush()

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)
        sys.stdout.flush()

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


def builddir():
    return os.environ.get("AC_TOP_BUILDDIR") or os.getcwd()


def srcdir():
    return os.environ.get("AC_TOP_SRCDIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")


def client_binary():
    return os.path.join(builddir(), "src", "client", "asyncchat")


def server_binary():
    return os.path.join(builddir(), "src", "server", "asyncchatd")


def plugin_dir():
    return os.environ.get("AC_PLUGIN_BUILDDIR") or os.path.join(
        builddir(), "plugins", ".libs")


def short_tmpdir():
    """A short directory for unix sockets (sun_path is 108 bytes)."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return tempfile.mkdtemp(prefix="acc.", dir=base)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def main(cases):
    """Run each case(t); an exception is one failed test; print the plan."""
    import traceback
    t = Tap()
    for case in cases:
        try:
            case(t)
        except Exception:
            t.ok(False, "%s ran without an exception" % case.__name__,
                 traceback.format_exc())
    t.done()


def run(argv, stdin_data=None, timeout=60, stdin=None, env=None):
    """Run a program (env: variables to add); return (status, stdout
    text, stderr text)."""
    import subprocess
    # AC_TEST_WRAPPER (such as "libtool --mode=execute valgrind -q
    # --error-exitcode=9") runs our own programs under a checker.
    wrapper = os.environ.get("AC_TEST_WRAPPER", "").split()
    if wrapper and argv[0].startswith(builddir()):
        argv = wrapper + list(argv)
    p = subprocess.run(argv, input=stdin_data, stdin=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout,
                       env=dict(os.environ, **env) if env else None)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


class MinimalServer:
    """tests/client/minimal_server.py in a subprocess, with its event log."""

    def __init__(self, unix_path=None, key="default-key"):
        import subprocess
        import time
        self.dir = short_tmpdir()
        self.logpath = os.path.join(self.dir, "minimal.log")
        self.unix_path = unix_path
        argv = [sys.executable, os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "minimal_server.py"),
            "--key", key]
        argv += ["--unix", unix_path] if unix_path else ["--tcp", "0"]
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = self.log()
            if "listening on" in log:
                if not unix_path:
                    self.port = int(log.split("127.0.0.1:")[1].split()[0])
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("minimal server did not start:\n" + self.log())

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def events(self):
        return self.log().splitlines()

    def wait_for(self, pred, timeout=5):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events()):
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()
        rmtree(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
