"""nats-server for the tests of the plugins that speak NATS (tests/nats,
tests/cluster and their benchmarks in tools/): where the program is, a
skipped plan without it, one nats-server process on 127.0.0.1 stopped by
pid, and a bare NATS publisher for what no node would send.
"""

import os
import shutil
import socket
import time

import acproto
import harness
import procs
from harness import skip_all
from procs import wait_until

NATS_SERVER = os.environ.get("NATS_SERVER") or shutil.which("nats-server") \
    or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server")
        else None)


def main(cases, plugin):
    """harness.main, or a skipped plan without nats-server, the plugin
    (plugin.so) or asyncchatd."""
    if NATS_SERVER is None:
        skip_all("nats-server is not installed (apt-get install "
                 "nats-server)")
    if not os.path.exists(os.path.join(harness.PLUGINDIR, plugin + ".so")):
        skip_all("the %s plugin was not built (configure found no "
                 "libnats: apt-get install libnats-dev)" % plugin)
    if not os.path.exists(harness.SERVER):
        skip_all("asyncchatd is not built")
    harness.main(cases)


class NatsServer(procs.Process):
    """One nats-server on 127.0.0.1, on self.port, its log in
    logpath; a subclass says with what options in start()."""

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def launch_wait(self, args, timeout):
        """Run nats-server with args (after its address and port) and
        wait until it greets a client with INFO."""
        self.launch([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)] +
                    list(args))
        if not wait_until(self._answers, timeout, 0.05):
            raise RuntimeError("nats-server did not start:\n" +
                               self.log()[-2000:])
        return self

    def _answers(self):
        if self.poll() is not None:
            raise RuntimeError("nats-server exited:\n" + self.log()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.settimeout(0.5)
                return s.recv(4096).startswith(b"INFO")
        except OSError:
            return False

    def stop(self, timeout=5.0):
        """Stop it by pid; its exit status."""
        return procs.Process.stop(self, timeout)[0]


def _recv_until(s, mark, buf=b"", deadline=None):
    """Read from s until mark is in what was read; all of it. A -ERR
    from NATS, a close or the deadline passing fails."""
    while mark not in buf:
        if b"-ERR" in buf:
            raise AssertionError("NATS said %r" % buf)
        if deadline is not None and time.monotonic() > deadline:
            raise AssertionError("no %r from NATS" % mark.strip())
        data = s.recv(4096)
        if not data:
            raise acproto.Closed("nats")
        buf += data
    return buf


def publish(port, subject, payloads, timeout=5.0, reply=None, headers=None):
    """Publish each payload on subject (with a reply subject and headers,
    if given) with a bare NATS client, as someone who is not a node
    would, then PING and wait for the PONG, so that NATS has taken and
    routed them."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        buf = _recv_until(s, b"\r\n")
        if not buf.startswith(b"INFO "):
            raise AssertionError("not a NATS server: %r" % buf[:40])
        out = [b'CONNECT {"verbose":false,"pedantic":false%s}\r\n' %
               (b',"headers":true' if headers else b"")]
        to = subject.encode() + (b" " + reply.encode() if reply else b"")
        hdr = b""
        if headers:
            hdr = b"NATS/1.0\r\n" + b"".join(
                b"%s: %s\r\n" % (k.encode(), v.encode())
                for k, v in headers.items()) + b"\r\n"
        for p in payloads:
            if hdr:
                out.append(b"HPUB %s %d %d\r\n%s%s\r\n" % (
                    to, len(hdr), len(hdr) + len(p), hdr, p))
            else:
                out.append(b"PUB %s %d\r\n%s\r\n" % (to, len(p), p))
        out.append(b"PING\r\n")
        s.sendall(b"".join(out))
        _recv_until(s, b"PONG\r\n", deadline=time.monotonic() + timeout)
