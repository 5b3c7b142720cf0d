"""A throw-away PKI for TLS tests, made with the openssl program.

    c = certs()     # made once per test program; tap.Skip without openssl
    c.ca_crt                     the CA (basicConstraints CA:true)
    c.srv_crt, c.srv_key         signed; localhost and 127.0.0.1
    c.srv2_crt, c.srv2_key       the same names, another certificate
    c.other_crt, c.other_key     signed; for the name "other" only
    c.cli_crt, c.cli_key         a signed client certificate
    c.rogue_crt, c.rogue_key     self-signed, same subject as the client
    c.der(crt)                   a certificate as DER bytes
"""

import os
import shutil
import ssl
import subprocess

import procs
from tap import Skip

OPENSSL = shutil.which("openssl")
MINIMAL_CNF = "[req]\ndistinguished_name = dn\n[dn]\n"


class Certs:
    """The test PKI, made once per run (about a second of key generation)."""

    def __init__(self):
        self.dir = procs.mkdtemp("actls-")
        self.cnf = self.path("req.cnf")
        with open(self.cnf, "w") as f:
            f.write(MINIMAL_CNF)
        self.ca_crt, self.ca_key = self.make(
            "ca", "/CN=asyncchat test CA",
            ["basicConstraints=critical,CA:true",
             "keyUsage=critical,keyCertSign,cRLSign"], signed=False)
        san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        self.srv_crt, self.srv_key = self.make("srv", "/CN=localhost", [san])
        self.srv2_crt, self.srv2_key = self.make(
            "srv2", "/CN=localhost/O=second", [san])
        self.other_crt, self.other_key = self.make(
            "other", "/CN=other", ["subjectAltName=DNS:other"])
        self.cli_crt, self.cli_key = self.make("client", "/CN=chat client", [])
        self.rogue_crt, self.rogue_key = self.make(
            "rogue", "/CN=chat client", [], signed=False)
        for p in os.listdir(self.dir):
            os.chmod(self.path(p), 0o600)

    def path(self, name):
        return os.path.join(self.dir, name)

    def make(self, name, subj, exts, signed=True):
        crt, key = self.path(name + ".crt"), self.path(name + ".key")
        cmd = [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
               "-config", self.cnf, "-subj", subj, "-days", "2",
               "-keyout", key, "-out", crt]
        if signed:
            cmd += ["-CA", self.ca_crt, "-CAkey", self.ca_key,
                    "-addext", "basicConstraints=critical,CA:false"]
        for e in exts:
            cmd += ["-addext", e]
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("openssl req failed: %s" % p.stdout.decode())
        return crt, key

    def der(self, crt):
        with open(crt) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())


_certs = None


def certs():
    """The PKI of this test program (made on first use)."""
    global _certs
    if OPENSSL is None:
        raise Skip("no openssl program")
    if _certs is None:
        _certs = Certs()
    return _certs
