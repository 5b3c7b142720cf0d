"""Scraping asyncchatd's Prometheus endpoint in tests: the text format
parsed strictly (every fault raises ValueError), and the helpers that find
the endpoint in a server's log and read it."""

import re
import urllib.error
import urllib.request

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_RE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % NAME)
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')


class Metrics:
    """One parsed scrape: samples by (name, sorted labels), types by family."""

    def __init__(self, text):
        self.types, self.samples = parse(text)

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def labels(self, name, label):
        return sorted(dict(k[1])[label] for k in self.samples if k[0] == name)


def parse(text):
    """Parse the text format strictly; raise ValueError on any fault.

    Every sample follows the HELP and TYPE of its family, families are
    contiguous and declared once, no sample repeats, counters end in
    _total, and histograms have cumulative buckets ending in +Inf that
    equals _count.
    """
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    types, helps, samples = {}, set(), {}
    family = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line)
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) != 4 or not re.fullmatch(NAME, parts[2]) or not parts[3]:
                raise ValueError("bad HELP: " + where)
            if parts[2] in helps:
                raise ValueError("second HELP: " + where)
            helps.add(parts[2])
            family = parts[2]
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[2] != family or parts[3] not in TYPES:
                raise ValueError("TYPE without its HELP just before: " + where)
            if family in types:
                raise ValueError("second TYPE: " + where)
            types[family] = parts[3]
            if parts[3] == "counter" and not family.endswith("_total"):
                raise ValueError("counter not named *_total: " + where)
            continue
        if line.startswith("#") or not line:
            raise ValueError("stray comment or blank line: " + where)
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError("bad sample: " + where)
        name, labeltext, value = m.groups()
        if family is None or family not in types:
            raise ValueError("sample before HELP and TYPE: " + where)
        allowed = {family}
        if types[family] == "histogram":
            allowed = {family + "_bucket", family + "_sum", family + "_count"}
        if name not in allowed:
            raise ValueError("sample outside its family %s: %s" % (family, where))
        labels = {}
        if labeltext is not None:
            pos = 0
            while pos < len(labeltext):
                lm = LABEL_RE.match(labeltext, pos)
                if not lm or lm.group(1) in labels:
                    raise ValueError("bad labels: " + where)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            if not labels:
                raise ValueError("empty label set: " + where)
        try:
            v = float(value)
        except ValueError:
            raise ValueError("bad value: " + where)
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise ValueError("repeated sample: " + where)
        samples[key] = v
    for fam, typ in types.items():
        if typ == "histogram":
            check_histogram(fam, samples)
    return types, samples


def check_histogram(fam, samples):
    """Buckets are cumulative, end with +Inf, and +Inf equals _count."""
    series = {}
    for (name, labels), v in samples.items():
        if name != fam + "_bucket":
            continue
        d = dict(labels)
        if "le" not in d:
            raise ValueError("%s bucket without le" % fam)
        le = d.pop("le")
        series.setdefault(tuple(sorted(d.items())), []).append(
            (float(le), v))
    for rest, buckets in series.items():
        buckets.sort()
        if buckets[-1][0] != float("inf"):
            raise ValueError("%s%r: no +Inf bucket" % (fam, rest))
        counts = [v for _, v in buckets]
        if counts != sorted(counts):
            raise ValueError("%s%r: buckets not cumulative" % (fam, rest))
        if samples.get((fam + "_count", rest)) != counts[-1] or \
                (fam + "_sum", rest) not in samples:
            raise ValueError("%s%r: _count or _sum wrong" % (fam, rest))


def metrics_url(srv, start=0):
    """The URL the server logged (from offset start of its log)."""
    m = srv.wait_log(r"metrics on (http://\S+/metrics)", timeout=5, start=start)
    if m is None:
        raise AssertionError("no 'metrics on' line in the log:\n" + srv.log()[-2000:])
    return m.group(1)


def fetch(url, method="GET"):
    """(status, content type, body text) of one request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), ""


def scrape(url):
    status, ctype, body = fetch(url)
    if status != 200:
        raise AssertionError("GET %s: status %s" % (url, status))
    return Metrics(body)
