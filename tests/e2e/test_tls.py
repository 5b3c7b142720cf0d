#!/usr/bin/env python3
"""TLS listeners (tls://) and the client program's `tls` transport.

Certificates are made at test time with `openssl req` in a temporary
directory: a CA, server certificates signed by it (for localhost and
127.0.0.1, for another name only, and a second one for the reload), and a
client certificate.  Every connection goes to 127.0.0.1.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings

import acproto
from harness import CLIENT, Server, Skip, main, mkdtemp
from pki import certs

LISTEN = ["tcp://127.0.0.1:0", "tls://127.0.0.1:0"]


def tls_server(c, cert=None, key=None, extra=None, **kw):
    """A server with a tcp and a tls listener on ephemeral ports."""
    opts = {"listen": LISTEN, "tls_cert": cert or c.srv_crt,
            "tls_key": key or c.srv_key, "log_level": "debug"}
    opts.update(extra or {})
    srv = Server(server=opts, unix=False, **kw)
    m = srv.wait_log(r"listening on tls://127\.0\.0\.1:(\d+)", 5)
    if not m:
        raise RuntimeError("no tls listener in the log:\n" + srv.log())
    srv.tls_port = int(m.group(1))
    return srv


def client_ctx(c, cert=False, ca=True):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca:
        ctx.load_verify_locations(c.ca_crt)
    if cert:
        ctx.load_cert_chain(c.cli_crt, c.cli_key)
    return ctx


def tls_connect(srv, ctx, host="localhost", key="default-key"):
    return acproto.Client.tls("127.0.0.1", srv.tls_port, ctx, host, key)


def run_client(args, text="hello over tls\n", timeout=20):
    """Run `asyncchat ARGS` in file mode on a file holding text."""
    d = mkdtemp("actlsc-")
    path = os.path.join(d, "lines.txt")
    with open(path, "w") as f:
        f.write(text)
    args = [a if a != "FILE" else path for a in args]
    p = subprocess.run([CLIENT] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def case_python_echo(t):
    c = certs()
    with tls_server(c) as srv:
        t.ok(srv.tls_port > 0, "tls listener logged with its port")
        cl = tls_connect(srv, client_ctx(c))
        with cl:
            t.eq(cl.sock.version() in ("TLSv1.2", "TLSv1.3"), True,
                 "TLS 1.2 or newer negotiated")
            cl.handshake()
            cl.send_message(b"ping over tls")
            f = cl.recv_type("message")
            t.eq(f.content, b"ping over tls", "echo over tls")
        t.ok(srv.wait_log(r"opened peer=127\.0\.0\.1:\d+ transport=tls"),
             "session transport is tls")
        # a plain tcp client on the same server is unaffected
        with srv.client("tcp") as p:
            t.eq(p.ping().content, b"pong", "tcp listener beside tls works")


def case_program_file(t):
    c = certs()
    with tls_server(c) as srv:
        rc, out, err = run_client(["--ca", c.ca_crt, "tls", "file", "FILE",
                                   "localhost", str(srv.tls_port)])
        t.ok(rc == 0 and "hello over tls" in out,
             "asyncchat --ca tls file: echo, exit 0",
             "rc=%s\nout=%s\nerr=%s" % (rc, out, err))
        rc, out, err = run_client(["--ca", c.ca_crt, "tls", "file", "FILE",
                                   "127.0.0.1", str(srv.tls_port)])
        t.ok(rc == 0 and "hello over tls" in out,
             "an IP address is checked against the IP SAN",
             "rc=%s\nout=%s\nerr=%s" % (rc, out, err))
        rc, out, err = run_client(["tls", "file", "FILE", "localhost",
                                   str(srv.tls_port)])
        t.ok(rc != 0 and "certificate verify failed" in err,
             "without --ca the test CA is not trusted", err)


def case_wrong_host(t):
    c = certs()
    with tls_server(c, c.other_crt, c.other_key) as srv:
        for host, want in (("127.0.0.1", "IP address mismatch"),
                           ("localhost", "hostname mismatch")):
            rc, out, err = run_client(["--ca", c.ca_crt, "tls", "file",
                                       "FILE", host, str(srv.tls_port)])
            t.ok(rc != 0 and "certificate verify failed" in err and
                 want in err and "hello over tls" not in out,
                 "%s against a cert for DNS:other: %s" % (host, want),
                 "rc=%s\nout=%s\nerr=%s" % (rc, out, err))
        rc, out, err = run_client(["--insecure", "tls", "file", "FILE",
                                   "127.0.0.1", str(srv.tls_port)])
        t.ok(rc == 0 and "hello over tls" in out, "--insecure connects",
             "rc=%s\nout=%s\nerr=%s" % (rc, out, err))
        t.ok("warning" in err and "insecure" in err,
             "--insecure warns on stderr", err)
        rc, out, err = run_client(["--insecure", "tcp", "file", "FILE",
                                   "127.0.0.1", str(srv.port)])
        t.ok(rc == 2 and "tls only" in err, "tls options refused for tcp",
             err)


def case_plain_client_on_tls_port(t):
    c = certs()
    with tls_server(c) as srv:
        raw = acproto.Client.tcp("127.0.0.1", srv.tls_port, key="default-key")
        with raw:
            raw.send("session_ack", b"not tls at all", session_id=None)
            t.ok(raw.is_closed(3.0), "server closes a plain tcp client")
        m = srv.wait_log(r"TLS handshake failed: ([^\n]*) peer=")
        t.ok(m is not None, "handshake failure logged with a reason",
             srv.log()[-2000:])
        t.ok(srv.wait_log(r"closed reason=tls-error"),
             "closed with reason tls-error")
        with tls_connect(srv, client_ctx(c)) as cl:
            cl.handshake()
            t.eq(cl.ping().content, b"pong", "a good tls client still works")
        t.ok(srv.active, "server still running")


def case_old_tls_refused(t):
    c = certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.ca_crt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError, AttributeError) as e:
        raise Skip("local OpenSSL cannot offer TLS 1.1: %s" % e)
    with tls_server(c) as srv:
        try:
            cl = tls_connect(srv, ctx)
            cl.close()
            t.ok(False, "a TLS 1.1 client is refused")
        except ssl.SSLError as e:
            if "NO_PROTOCOLS_AVAILABLE" in str(e) or "no protocols" in str(e):
                raise Skip("local OpenSSL cannot offer TLS 1.1")
            t.ok(True, "a TLS 1.1 client is refused (%s)" % e.reason)
        except (ConnectionError, OSError) as e:
            t.ok(True, "a TLS 1.1 client is refused (%s)" % e)
        t.ok(srv.wait_log(r"TLS handshake failed: [^\n]*(version|protocol)"),
             "server logs the protocol version refusal", srv.log()[-2000:])


# TLS 1.2 suites a client may offer, and whether asyncchat takes them:
# ECDHE with an AEAD cipher only (asyncchat.conf(5), TLS).
TLS12_SUITES = [
    ("ECDHE-RSA-AES128-SHA", False),            # CBC, SHA-1 MAC
    ("ECDHE-RSA-AES256-SHA", False),            # CBC, SHA-1 MAC
    ("AES128-SHA", False),                      # RSA key exchange, CBC-SHA1
    ("ECDHE-RSA-AES128-SHA256", False),         # CBC
    ("AES128-GCM-SHA256", False),               # RSA key exchange
    ("ECDHE-RSA-AES128-GCM-SHA256", True),
    ("ECDHE-RSA-AES256-GCM-SHA384", True),
    ("ECDHE-RSA-CHACHA20-POLY1305", True),
]


def tls12_ctx(c, suite):
    """A client context that offers TLS 1.2 with this one suite only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.ca_crt)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(suite + ":@SECLEVEL=0")
    return ctx


def case_server_ciphers(t):
    """The server takes TLS 1.2 only with ECDHE and an AEAD cipher: a
    client offering nothing but a CBC-SHA1 suite is refused."""
    c = certs()
    with tls_server(c) as srv:
        for suite, accepted in TLS12_SUITES:
            try:
                ctx = tls12_ctx(c, suite)
            except ssl.SSLError as e:
                t.skip("server, TLS 1.2 " + suite, "local OpenSSL: %s" % e)
                continue
            try:
                with tls_connect(srv, ctx) as cl:
                    got = cl.sock.cipher()[0]
                    cl.handshake()
                    pong = cl.ping().content
                ok = accepted and got == suite and pong == b"pong"
                why = "negotiated %s" % got
            except (ssl.SSLError, ConnectionError, OSError) as e:
                ok = not accepted
                why = str(e)
            t.ok(ok, "server, TLS 1.2 offering only %s: %s" % (
                suite, "accepted" if accepted else "refused"), why)
        with tls_connect(srv, client_ctx(c)) as cl:
            t.ok(cl.sock.version() == "TLSv1.3" and
                 cl.sock.cipher()[0].startswith("TLS_"),
                 "server: TLS 1.3 with its default suites",
                 repr(cl.sock.cipher()))


def case_client_ciphers(t):
    """The client program offers TLS 1.2 only with ECDHE and an AEAD
    cipher: a server that takes nothing but CBC-SHA1 gets no handshake."""
    import threading
    c = certs()
    for suite, accepted in TLS12_SUITES:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(c.srv_crt, c.srv_key)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.set_ciphers(suite + ":@SECLEVEL=0")
        except ssl.SSLError as e:
            t.skip("client, TLS 1.2 " + suite, "local OpenSSL: %s" % e)
            continue
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(15)
        result = {}

        def serve():
            try:
                conn, _ = lsock.accept()
                conn.settimeout(10)
                with ctx.wrap_socket(conn, server_side=True) as ss:
                    result["cipher"] = ss.cipher()[0]
            except Exception as e:     # the refusal is the point
                result["error"] = str(e)

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        rc, out, err = run_client(["--ca", c.ca_crt, "tls", "file", "FILE",
                                   "localhost",
                                   str(lsock.getsockname()[1])])
        th.join(15)
        lsock.close()
        if accepted:
            ok = result.get("cipher") == suite and "TLS handshake" not in err
        else:
            ok = "cipher" not in result and rc != 0 and \
                "TLS handshake failed" in err
        t.ok(ok, "client, a TLS 1.2 server taking only %s: %s" % (
            suite, "handshake done" if accepted else "refused"),
            "result=%r\nrc=%s\nerr=%s" % (result, rc, err))


def case_client_certificates(t):
    c = certs()
    with tls_server(c, extra={"tls_client_ca": c.ca_crt}) as srv:
        refused = False
        try:
            cl = tls_connect(srv, client_ctx(c))
            with cl:
                cl.recv_type("session_init")
        except (acproto.Closed, ssl.SSLError, ConnectionError,
                acproto.Timeout):
            refused = True
        t.ok(refused, "a client without a certificate gets no session")
        t.ok(srv.wait_log(r"TLS handshake failed: [^\n]*certificate"),
             "server logs the missing certificate", srv.log()[-2000:])
        with tls_connect(srv, client_ctx(c, cert=True)) as cl:
            cl.handshake()
            t.eq(cl.ping().content, b"pong",
                 "a client certificate signed by the CA is accepted")
        rc, out, err = run_client(["--ca", c.ca_crt, "--cert", c.cli_crt,
                                   "--cert-key", c.cli_key, "tls", "file",
                                   "FILE", "localhost", str(srv.tls_port)])
        t.ok(rc == 0 and "hello over tls" in out,
             "asyncchat --cert --cert-key is accepted",
             "rc=%s\nout=%s\nerr=%s" % (rc, out, err))
        rc, out, err = run_client(["--ca", c.ca_crt, "tls", "file", "FILE",
                                   "localhost", str(srv.tls_port)])
        t.ok(rc != 0 and "TLS" in err and "hello over tls" not in out,
             "asyncchat without --cert is refused with a TLS reason",
             "rc=%s\nout=%s\nerr=%s" % (rc, out, err))
        rc, out, err = run_client(["--ca", c.ca_crt, "--cert", c.rogue_crt,
                                   "--cert-key", c.rogue_key, "tls", "file",
                                   "FILE", "localhost", str(srv.tls_port)])
        t.ok(rc != 0, "a self-signed client certificate is refused",
             "rc=%s\nout=%s\nerr=%s" % (rc, out, err))


def case_config_errors(t):
    c = certs()
    srv = Server(server={"listen": LISTEN, "tls_cert": c.srv_crt},
                 unix=False, start=False)
    rc, out = srv.check()
    t.ok(rc != 0 and re.search(re.escape(srv.confpath) +
                               r":\d+: \[server\] listen: tls://127\.0\.0\.1:0 "
                               r"needs tls_cert and tls_key", out),
         "-t: tls listener without tls_key is a FILE:LINE error", out)
    srv.write_config(server={"listen": LISTEN, "tls_cert": c.srv_crt,
                             "tls_key": c.other_key})
    rc, out = srv.check()
    t.ok(rc != 0 and re.search(r":\d+: \[server\] tls_key: .*does not "
                               r"match the certificate", out),
         "-t: a key that does not match the certificate", out)
    srv.write_config(server={"listen": LISTEN,
                             "tls_cert": c.path("missing.crt"),
                             "tls_key": c.srv_key})
    rc, out = srv.check()
    t.ok(rc != 0 and re.search(r":\d+: \[server\] tls_cert: .*missing\.crt: "
                               r"cannot load the certificate", out),
         "-t: a missing certificate file", out)
    srv.write_config(server={"listen": LISTEN, "tls_cert": c.srv_key,
                             "tls_key": c.srv_key})
    rc, out = srv.check()
    t.ok(rc != 0 and "tls_cert" in out, "-t: a key given as certificate", out)
    # a good pair passes; a readable key and the default key beyond
    # loopback are warned about (nothing is bound by -t)
    loose = c.path("loose.key")
    shutil.copy(c.srv_key, loose)
    os.chmod(loose, 0o644)
    srv.write_config(server={"listen": ["tls://0.0.0.0:0"],
                             "tls_cert": c.srv_crt, "tls_key": loose})
    rc, out = srv.check()
    t.ok(rc == 0 and "configuration OK" in out, "-t: a good pair is OK", out)
    t.ok("tls_key" in out and "group or others" in out,
         "-t: a group/other-readable tls_key is warned about", out)
    t.ok("default-key" in out and "tls://0.0.0.0:0" in out,
         "-t: default key on a tls listener beyond loopback is warned about",
         out)
    with open(c.srv_key) as f:
        secret = f.read().splitlines()[1]
    t.ok(secret not in out, "key material never printed")


def case_sighup_new_certificate(t):
    c = certs()
    with tls_server(c) as srv:
        old = tls_connect(srv, client_ctx(c))
        with old:
            old.handshake()
            t.eq(old.sock.getpeercert(True), c.der(c.srv_crt),
                 "first certificate served")
            mark = len(srv.log())
            srv.write_config(server={"listen": LISTEN,
                                     "tls_cert": c.srv2_crt,
                                     "tls_key": c.srv2_key,
                                     "log_level": "debug"})
            srv.signal(signal.SIGHUP)
            t.ok(srv.wait_log("configuration reloaded", 5, mark),
                 "reload accepted", srv.log()[mark:])
            with tls_connect(srv, client_ctx(c)) as new:
                new.handshake()
                t.eq(new.sock.getpeercert(True), c.der(c.srv2_crt),
                     "a new connection sees the new certificate")
            t.eq(old.ping().content, b"pong",
                 "an existing session survives the reload")
        # a broken key on reload keeps the running certificate
        mark = len(srv.log())
        srv.write_config(server={"listen": LISTEN, "tls_cert": c.srv_crt,
                                 "tls_key": c.srv2_key})
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log("reload failed: keeping", 5, mark),
             "a mismatched key on reload is refused", srv.log()[mark:])
        with tls_connect(srv, client_ctx(c)) as new:
            new.handshake()
            t.eq(new.sock.getpeercert(True), c.der(c.srv2_crt),
                 "and the running certificate stays")


main([case_python_echo, case_program_file, case_wrong_host,
      case_plain_client_on_tls_port, case_old_tls_refused,
      case_server_ciphers, case_client_ciphers,
      case_client_certificates, case_config_errors,
      case_sighup_new_certificate])
