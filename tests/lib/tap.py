"""TAP output for every Python test program of the tree.

One writer, so that every suite prints what automake's tap-driver.sh (and
tools/run-tests, which counts the same lines) reads the same way:

    t = Tap()
    t.ok(cond, "name", diag)          # ok N - name / not ok N - name
    t.eq(got, want, "name")           # ok, with expected/got on failure
    t.ok(cond, "name", known_bug="#12")   # a failure is "# TODO #12"
    t.skip("name", "why")             # ok N - name # SKIP why
    t.diag("text")                    # # text
    t.bail_out("why")                 # Bail out! why (and exit 1)
    sys.exit(t.done())                # 1..N at the end, status 1 on failure

A name may hold anything: "#" is escaped as "\\#" (and "\\" as "\\\\") so
that it cannot start a directive, and line breaks become spaces.  The plan
is printed at the end unless plan(n) printed it first.

run(cases) runs a list of case functions, each given the Tap; a case
reports as many lines as it likes.  Its lines are prefixed with its name
("case_echo" reports "echo: ..."); Skip raised inside a case skips the
rest of it; any other exception is one "not ok" line with the traceback.
"""

import sys
import traceback


class Skip(Exception):
    """Raise inside a case to skip the rest of it (reported as # SKIP)."""


def escape(text):
    """text as a TAP description: no directive, no line break."""
    text = str(text).replace("\\", "\\\\").replace("#", "\\#")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _reason(text):
    """text on one line, for after a # SKIP or # TODO directive."""
    return " ".join(str(text).split())


class Tap:
    """A TAP producer: numbered ok / not ok lines, diagnostics, skips."""

    def __init__(self, out=None):
        self.n = 0
        self.failed = 0
        self.out = out if out is not None else sys.stdout
        self.prefix = ""        # put before every name (run() sets it)
        self.planned = None     # the count plan() announced, if any

    def _line(self, s):
        self.out.write(s + "\n")
        self.out.flush()

    def plan(self, n):
        """Announce n test lines before the first one."""
        self.planned = n
        self._line("1..%d" % n)

    def diag(self, text):
        """Print text as # comment lines (diagnostics)."""
        for line in str(text).splitlines() or [""]:
            self._line("# " + line)

    def ok(self, cond, name, diag=None, known_bug=None):
        """One test line; diag (str or callable) is printed on failure.

        known_bug: a failure is a known, reported bug of the program under
        test: it prints "not ok ... # TODO known_bug" (automake counts an
        XFAIL: visible, not failing the run); a pass prints a plain "ok", so
        the marker cannot turn into an XPASS once the bug is fixed.
        """
        self.n += 1
        name = escape(self.prefix + name)
        if cond:
            self._line("ok %d - %s" % (self.n, name))
        else:
            if known_bug:
                self._line("not ok %d - %s # TODO %s"
                           % (self.n, name, _reason(known_bug)))
            else:
                self.failed += 1
                self._line("not ok %d - %s" % (self.n, name))
            if callable(diag):
                try:
                    diag = diag()
                except Exception as e:
                    diag = "(diagnostics failed: %s)" % e
            if diag:
                self.diag(diag)
        return bool(cond)

    def eq(self, got, want, name, diag=None, known_bug=None):
        """ok(got == want); a failure shows both (and diag)."""
        def explain():
            extra = diag() if callable(diag) else diag
            return "expected: %r\n     got: %r%s" % (
                want, got, "\n" + extra if extra else "")
        return self.ok(got == want, name, explain, known_bug)

    def skip(self, name, reason):
        """One test line skipped for reason (automake counts a SKIP)."""
        self.n += 1
        self._line("ok %d - %s # SKIP %s"
                   % (self.n, escape(self.prefix + name), _reason(reason)))

    def bail_out(self, reason):
        """Stop the whole program: nothing after this can be trusted."""
        self._line("Bail out! " + _reason(reason))
        sys.exit(1)

    def done(self):
        """Print the plan if not yet printed; the exit status to use."""
        if self.planned is None:
            self._line("1..%d" % self.n)
        elif self.planned != self.n:
            self.diag("planned %d tests but ran %d" % (self.planned, self.n))
            return 1
        return 1 if self.failed else 0


def skip_all(reason, out=None):
    """Print a plan that skips the whole program, and exit 0."""
    out = out if out is not None else sys.stdout
    out.write("1..0 # SKIP %s\n" % _reason(reason))
    out.flush()
    sys.exit(0)


def case_label(case):
    """A case function's name as its lines' prefix: case_echo -> echo."""
    label = case.__name__
    return label[5:] if label.startswith("case_") else label


def run(cases, after_case=None, error_diag=None, out=None):
    """Run every case(t) with one Tap; return the exit status.

    after_case(t), if given, runs after each case, whatever happened (the
    server harness stops what the case left running there).  error_diag(),
    if given, returns text added to the traceback of a case that raised.
    """
    t = Tap(out)
    for case in cases:
        t.prefix = case_label(case) + ": "
        try:
            case(t)
        except Skip as e:
            t.skip("rest of case", str(e))
        except Exception:
            extra = ""
            if error_diag is not None:
                try:
                    extra = error_diag()
                except Exception as e:
                    extra = "(diagnostics failed: %s)" % e
            t.ok(False, "ran without an exception",
                 traceback.format_exc() + extra)
        finally:
            try:
                if after_case is not None:
                    after_case(t)
            finally:
                t.prefix = ""
    return t.done()
