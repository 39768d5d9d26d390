"""Measured values turned into printed figures: percentiles and medians, "median (min-max)" over
runs, SIPp's whole-ms times, plain-text tables, and results.json.

Python 3 standard library only.
"""

import json


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def table(headers, rows):
    """A plain-text table (columns padded, numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(widths[i]) if n and _numeric(c) else c.ljust(widths[i])
                             for i, c in enumerate(r)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _numeric(s):
    try:
        float(s.rstrip("%").replace(",", ""))
        return True
    except ValueError:
        return False


def fmt_ms(v):
    """SIPp 3.6.1 reports response times in whole ms ("<1" for 0)."""
    if v is None:
        return "-"
    return "<1" if v < 0.5 else "%.0f" % v


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def spread(values, fmt="%.0f"):
    """"median (min-max)" of the runs' values ("-" when none; the median alone for one run or
    when they are all equal)."""
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    m = fmt % median(v)
    if len(v) == 1 or min(v) == max(v):
        return m
    return "%s (%s-%s)" % (m, fmt % min(v), fmt % max(v))


def spread_ms(values):
    """spread() of times in SIPp's whole ms (fmt_ms)."""
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    m = fmt_ms(median(v))
    if len(v) == 1 or fmt_ms(min(v)) == fmt_ms(max(v)):
        return m
    return "%s (%s-%s)" % (m, fmt_ms(min(v)), fmt_ms(max(v)))


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=str)
