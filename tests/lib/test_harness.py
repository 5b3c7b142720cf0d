#!/usr/bin/env python3
"""The harness does not depend on where the tree is built.

The kernel refuses a unix socket path of 108 bytes or more (and the
server once refused config lines over 198 characters), so nothing the
harness writes may grow with the build directory's path or $TMPDIR.  Here the plugin directories are reached through a path of some
300 characters, TMPDIR is as long, and a server with shipped and test
plugins (by name and by path) must still start, chain them and listen on
its unix socket.
"""

import os

import harness
from harness import Server, main, mkdtemp, test_plugin

LINE_LIMIT = 198        # short lines, whatever the build directory
SUN_PATH = 108


def long_dir(base, length):
    """A directory under base whose path is at least length characters."""
    path = base
    while len(path) < length:
        path = os.path.join(path, "d" * 60)
    os.makedirs(path)
    return path


def case_long_build_dir(t):
    top = long_dir(mkdtemp("aclong-"), 300)
    os.makedirs(os.path.join(top, "plugins"))
    os.makedirs(os.path.join(top, "tests", "plugins"))
    os.symlink(harness.PLUGINDIR, os.path.join(top, "plugins", ".libs"))
    os.symlink(harness.TESTPLUGINDIR,
               os.path.join(top, "tests", "plugins", ".libs"))
    saved = (harness.PLUGINDIR, harness.TESTPLUGINDIR, dict(harness._links),
             os.environ.get("TMPDIR"))
    harness.PLUGINDIR = os.path.join(top, "plugins", ".libs")
    harness.TESTPLUGINDIR = os.path.join(top, "tests", "plugins", ".libs")
    harness._links.clear()
    os.environ["TMPDIR"] = long_dir(mkdtemp("acltmp-"), 300)
    try:
        tag, stop = test_plugin("tag"), test_plugin("stop_chain")
        srv = Server(plugins=["echo", tag, stop, "broadcast"],
                     sections={"tag": {"tag": "T"},
                               "broadcast": {"include_sender": "yes"}},
                     start=False)
        long_lines = [ln for ln in open(srv.confpath).read().splitlines()
                      if len(ln) > LINE_LIMIT]
        t.eq(long_lines, [], "no config line over %d characters"
             % LINE_LIMIT)
        t.ok(len(srv.unix_path) < SUN_PATH, "the unix socket path is short "
             "(%d bytes)" % len(srv.unix_path), srv.unix_path)
        rc, out = srv.check()
        t.ok(rc == 0 and "configuration OK" in out,
             "-t: plugins by name and by path load", out)
        with srv.start():
            c = srv.client("unix")
            c.send_message(b"chain")
            got = c.sync()
            t.eq([f.content for f in got], [b"chain", b"T:chain"],
                 "echo, then tag; stop_chain ends the chain before "
                 "broadcast (which would send it back too)", repr(got))
            c.close()
    finally:
        (harness.PLUGINDIR, harness.TESTPLUGINDIR, links, tmpdir) = saved
        harness._links.clear()
        harness._links.update(links)
        if tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = tmpdir


if __name__ == "__main__":
    main([case_long_build_dir])
