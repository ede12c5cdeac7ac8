#!/usr/bin/python3
"""Reference numbers for tests/unit/doctor/test_analyze.c's planted store, computed with
statsmodels from the rules in src/doctor/analyze.c's header (none of it from the C code).

Run with Debian's python3 (apt-get install python3-statsmodels):

    /usr/bin/python3 tests/reference/doctor/planted.py

It prints the C constants that test_analyze.c holds (REF_*); paste them there when the planted
store or the rules change.

The planted store (the same in the C test): 32 cells, every combination of device {desktop,
mobile} x country {DE, FR} x source {direct, google} x hourBand {evening, morning} x weekday
{monday, saturday}; every cell has 1,000 sessions, 300 carts, 180 checkouts; desktop cells go on
to 146 shipping, 131 payment, 124 confirmations, mobile cells to 77, 69, 66 (shipping
conversion 0.81 vs 0.43). Orders = confirmations, 70.00 revenue each. The previous window is
the same as this one (no shift); benchmarks are the shipped table; margin 0.40 (store default);
window 28 days.

Two-way segments (rule 12): every pair of dimensions and values, tested against the rest of the
store in the same segment_gap family; a two-way finding is kept only when it converts
significantly worse (p <= 0.05) than the rest of each of its two one-way parents. Here mobile
drops everywhere, so no mobile child is kept.
"""
import itertools

import numpy as np
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

DIMS = [("device", ["desktop", "mobile"]), ("country", ["DE", "FR"]),
        ("source", ["direct", "google"]), ("hourBand", ["evening", "morning"]),
        ("weekday", ["monday", "saturday"])]
BENCH = [0, 0.93, 0.45, 0.25, 0.20, 0.10]
MIN, FDR, DAYS, MARGIN, AOV = 30, 0.05, 28, 0.40, 70.0


def cell(values):
    r = [1000, 300, 180] + ([146, 131, 124] if values[0] == "desktop" else [77, 69, 66])
    return {"values": values, "reach": r, "orders": r[5], "revenue": r[5] * AOV}


def add(cells):
    reach = [sum(c["reach"][s] for c in cells) for s in range(6)]
    return {"reach": reach, "orders": sum(c["orders"] for c in cells),
            "revenue": sum(c["revenue"] for c in cells)}


cells = [cell(v) for v in itertools.product(*[vals for _, vals in DIMS])]
total = add(cells)
previous = total
hyps = []
for s in range(1, 6):
    n = total["reach"][s - 1]
    if n >= MIN and 0 < BENCH[s] < 1:
        p0 = 1 - BENCH[s]
        _, p = proportions_ztest(total["reach"][s], n, value=p0, prop_var=p0)
        hyps.append(dict(kind="benchmark_gap", step=s, seg=None, g=total, r=total, n=n, rn=0,
                         rate=total["reach"][s] / n, ref=p0, p=p))
    pn = previous["reach"][s - 1]
    if n >= MIN and pn >= MIN:
        _, p = proportions_ztest([total["reach"][s], previous["reach"][s]], [n, pn])
        hyps.append(dict(kind="baseline_shift", step=s, seg=None, g=total, r=previous, n=n,
                         rn=pn, rate=total["reach"][s] / n, ref=previous["reach"][s] / pn, p=p))
    segs = [((d,), (v,)) for d, (_, vals) in enumerate(DIMS) for v in vals]
    segs += [((d, e), (v, u)) for d, e in itertools.combinations(range(len(DIMS)), 2)
             for v in DIMS[d][1] for u in DIMS[e][1]]
    for ds, vs in segs:
        dim, v = tuple(DIMS[d][0] for d in ds), vs
        inside = lambda c: all(c["values"][d] == x for d, x in zip(ds, vs))
        g = add([c for c in cells if inside(c)])
        r = add([c for c in cells if not inside(c)])
        gn, rn = g["reach"][s - 1], r["reach"][s - 1]
        if gn < MIN or rn < MIN:
            continue
        if (g["reach"][s] + r["reach"][s]) in (0, gn + rn):
            p = 1.0  # no variance: the engine's "no evidence" (statsmodels gives NaN)
        else:
            _, p = proportions_ztest([g["reach"][s], r["reach"][s]], [gn, rn])
        h = dict(kind="segment_gap", step=s, seg=(dim, v), g=g, r=r, n=gn, rn=rn,
                 rate=g["reach"][s] / gn, ref=r["reach"][s] / rn, p=p, parent_ok=True)
        for d, x in (zip(ds, vs) if len(ds) == 2 else []):  # rule 12: vs each parent's rest
            pr = add([c for c in cells if c["values"][d] == x and not inside(c)])
            prn = pr["reach"][s - 1]
            if prn < MIN:
                h["parent_ok"] = False
                continue
            k = [g["reach"][s], pr["reach"][s]]
            pp = 1.0 if sum(k) in (0, gn + prn) else proportions_ztest(k, [gn, prn])[1]
            h["parent_ok"] &= h["rate"] < pr["reach"][s] / prn and pp <= FDR
        hyps.append(h)
# one Benjamini-Hochberg family per kind (rule 5 of src/doctor/analyze.c)
for kind in sorted(set(h["kind"] for h in hyps)):
    family = [h for h in hyps if h["kind"] == kind]
    for h, qq in zip(family, multipletests(np.array([h["p"] for h in family]),
                                           method="fdr_bh")[1]):
        h["q"] = qq
found = []
for h in hyps:
    qq = h["q"]
    if qq <= FDR and h["rate"] < h["ref"] and h.get("parent_ok", True):
        r, s = h["r"], h["step"]
        down = r["orders"] / r["reach"][s] if r["reach"][s] > 0 else 0
        aov = r["revenue"] / r["orders"] if r["orders"] > 0 else total["revenue"] / total["orders"]
        lost = max(0.0, h["n"] * (h["ref"] - h["rate"]) * down * 30 / DAYS)
        h.update(lost_orders=lost, lost_revenue=lost * aov, lost_profit=lost * aov * MARGIN)
        h["score"] = (1 - qq) * h["lost_profit"]
        found.append(h)
found.sort(key=lambda h: -h["score"])
print("/* generated by tests/reference/doctor/planted.py (statsmodels) */")
print("#define REF_TESTS %d" % len(hyps))
print("#define REF_FINDINGS %d" % len(found))
for i, h in enumerate(found[:2]):
    print("/* finding %d: %s at step %d, segment %s */" % (i + 1, h["kind"], h["step"], h["seg"]))
    for key in ["rate", "ref", "n", "rn", "p", "q", "lost_orders", "lost_revenue",
                "lost_profit"]:
        print("#define REF%d_%s %r" % (i + 1, key.upper(), float(h[key])))
