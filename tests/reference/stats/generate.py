#!/usr/bin/python3
"""Reference vectors for src/stats, computed independently with scipy, statsmodels and mpmath.

Run with Debian's python3 (apt-get install python3-scipy python3-statsmodels):

    /usr/bin/python3 tests/reference/stats/generate.py

It rewrites analyze.json, srm.json and sample_size.json beside this file; the unit test
tests/unit/stats/test_reference.c reads them. Output is deterministic (fixed seeds), so a
regeneration with the same library versions changes nothing.

What comes from where (none of it from the C code):
  moments           exact rational arithmetic (fractions.Fraction) on the very doubles the C
                    code reads, so the reference has no rounding error of its own;
  Welch (absolute)  scipy.stats.ttest_ind_from_stats (t, p) and scipy's Welch–Satterthwaite
                    denominator; intervals statsmodels' _tconfint_generic;
  Welch (relative)  the delta-method variance (the convention), then statsmodels' generic t
                    test and interval at the Welch df of the delta-method parts;
  CUPED             raw per-unit data: θ from numpy's within-arm covariances, each unit
                    adjusted, then scipy.stats.ttest_ind(equal_var=False) and statsmodels'
                    CompareMeans on the adjusted units;
  Bayesian          scipy.stats.norm for the posterior; risk by mpmath numerical integration
                    of E[max(±effect, 0)] at 40 digits (not the closed form the C code uses);
  sequential        the normal-mixture boundary evaluated in mpmath at 40 digits, one-sided
                    critical values by mpmath.findroot; the two-sided margin is cross-checked
                    against Waudby-Smith et al.'s published form;
  SRM               scipy.stats.chisquare;
  power             statsmodels NormalIndPower (power, solve_power).

Published worked examples included:
  - Welch: R's t.test on ts1 = (11,9,10,11,10,12,9,11,12,9), ts2 = (11,13,10,13,12,9,11,12,12,11)
    prints t = -1.8325, df = 17.9, p-value = 0.08356, 95% CI (-2.1469104, 0.1469104)
    (stats.stackexchange.com, "Welch's t-test confidence interval", answer by BruceET).
    Note R reports mean(ts1) - mean(ts2); our effect is variant - control with variant = ts1.
  - SRM: Kohavi, Tang, Xu, "Trustworthy Online Controlled Experiments" (2020), ch. 21:
    control 821,588 vs treatment 815,482 users on a 50/50 split, p-value 1.8e-6.
  - Sample size: the rule of thumb n = 16·σ²/δ² per arm for α = 0.05 and 80% power
    (van Belle 2008, "Statistical Rules of Thumb", 2.3; Kohavi et al. 2009) — the exact
    z-test figure is 15.7·σ²/δ².
"""
import json
import math
import os
from fractions import Fraction

import mpmath
import numpy as np
import scipy.stats as st
from scipy.optimize import brentq
from scipy.stats import _stats_py
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, _tconfint_generic, _tstat_generic

mpmath.mp.dps = 40
HERE = os.path.dirname(os.path.abspath(__file__))
ALT = {"two": "two-sided", "greater": "larger", "less": "smaller"}
INF = float("inf")


def clean(x):
    """JSON value: finite float, or None for 'does not apply' / infinite ends."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ---- moments ---------------------------------------------------------------------------------


def moments(metric, arm):
    n, s = Fraction(arm["n"]), Fraction(arm["sum"])
    if n == 0:
        return None, None
    mean = s / n
    if metric == "proportion":
        return mean, mean * (1 - mean)
    if n < 2:
        return mean, None
    ss = Fraction(arm.get("sumSquares", arm["sum"]))
    return mean, (ss - s * s / n) / (n - 1)


def diff(mc, vc, nc, mv, vv, nv, kind):
    """estimate, variant part, control part of the variance (exact)."""
    if mc is None or mv is None:
        return None, None, None
    if kind == "absolute":
        if vc is None or vv is None:
            return mv - mc, None, None
        return mv - mc, vv / nv, vc / nc
    if mc == 0:
        return None, None, None
    est = (mv - mc) / abs(mc)
    if vc is None or vv is None:
        return est, None, None
    return est, vv / (nv * mc * mc), vc * mv * mv / (nc * mc ** 4)


# ---- methods ---------------------------------------------------------------------------------


def welch(est, av, ac, nv, nc, alpha, sides, mc=None, vc=None, mv=None, vv=None, kind=None):
    out = {"stddev": None, "ciLow": None, "ciHigh": None, "pValue": None}
    if est is None or av is None:
        return out
    se2 = av + ac
    if se2 == 0:
        out["stddev"] = 0.0
        return out
    se = math.sqrt(se2)
    # Welch–Satterthwaite df via scipy's own helper on the variance parts.
    df, denom = _stats_py._unequal_var_ttest_denom(float(av) * nv, nv, float(ac) * nc, nc)
    df = float(df)
    assert abs(denom - se) <= 1e-13 * se
    if kind == "absolute":
        # Independent cross-check of t and p with scipy's summary-statistics Welch test.
        t_sc, p_sc = st.ttest_ind_from_stats(float(mv), math.sqrt(vv), nv, float(mc), math.sqrt(vc), nc,
                                             equal_var=False, alternative=ALT[sides].replace("larger", "greater").replace("smaller", "less"))
    tstat, p = _tstat_generic(float(est), 0.0, se, df, ALT[sides])
    if kind == "absolute" and math.isfinite(t_sc):
        assert abs(p_sc - p) <= 1e-9 * max(p, 1e-300) + 1e-300, (p_sc, p)
    lo, hi = _tconfint_generic(float(est), se, df, alpha, ALT[sides])
    # scipy's t quantile (stdtrit) is good to only ~1e-9 at non-integer df (measured against
    # mpmath), so the interval is recomputed with the exact quantile; statsmodels' interval
    # stays a cross-check at that accuracy.
    crit = t_quantile_upper(alpha / 2 if sides == "two" else alpha, df)
    lo2 = -INF if sides == "less" else float(est) - crit * se
    hi2 = INF if sides == "greater" else float(est) + crit * se
    for a, b in ((lo, lo2), (hi, hi2)):
        assert a == b or abs(a - b) <= 1e-8 * se, (a, b)
    lo, hi = lo2, hi2
    out.update(stddev=se, ciLow=clean(lo), ciHigh=clean(hi), pValue=float(p), df=df)
    return out


def t_quantile_upper(q, df):
    """x with P(T_df > x) = q, from the regularised incomplete beta at 40 digits."""
    d = mpmath.mpf(df)
    tail = lambda x: mpmath.betainc(d / 2, mpmath.mpf(1) / 2, 0, d / (d + x * x), regularized=True) / 2
    return float(mpmath.findroot(lambda x: tail(x) - q, st.t.isf(q, df)))


def normal_expect_positive(mu, s):
    """E[max(X, 0)], X ~ N(mu, s²), by numerical integration."""
    mu, s = mpmath.mpf(mu), mpmath.mpf(s)
    f = lambda x: x * mpmath.npdf(x, mu, s)
    lo = max(mpmath.mpf(0), mu - 40 * s)
    if mu + 40 * s <= 0:
        return mpmath.mpf(0)
    return mpmath.quad(f, [lo, mu, mu + 40 * s] if lo < mu else [lo, mu + 40 * s])


def bayes(est, av, ac, alpha, sides, prior):
    out = {"stddev": None, "ciLow": None, "ciHigh": None, "chanceToWin": None, "risk": None,
           "estimate": clean(est) if est is not None else None}
    if est is None or av is None or av + ac == 0:
        return out
    var = float(av + ac)
    mu, s2 = float(est), var
    if prior is not None:
        prec = 1 / var + 1 / prior["variance"]
        s2 = 1 / prec
        mu = s2 * (float(est) / var + prior["mean"] / prior["variance"])
    s = math.sqrt(s2)
    q = alpha / 2 if sides == "two" else alpha
    z = st.norm.isf(q)
    out.update(estimate=mu, stddev=s,
               ciLow=None if sides == "less" else mu - z * s,
               ciHigh=None if sides == "greater" else mu + z * s,
               chanceToWin=float(st.norm.sf(0, loc=mu, scale=s)),
               risk=[float(normal_expect_positive(mu, s)), float(normal_expect_positive(-mu, s))])
    return out


def sequential(est, av, ac, n_total, alpha, sides, tuning):
    out = {"stddev": None, "ciLow": None, "ciHigh": None, "pValue": None}
    if est is None or av is None:
        return out
    if av + ac == 0:
        out["stddev"] = 0.0
        return out
    a = mpmath.mpf(alpha)
    rho2 = (-2 * mpmath.log(a) + mpmath.log(1 - 2 * mpmath.log(a))) / tuning
    N = mpmath.mpf(n_total)
    se = mpmath.sqrt(mpmath.mpf((av + ac).numerator) / (av + ac).denominator)
    se_mix = se * mpmath.sqrt(1 + 1 / (N * rho2))
    K = mpmath.sqrt(N * rho2 + 1) / a
    e = mpmath.mpf(est.numerator) / est.denominator
    if sides == "two":
        half = se_mix * mpmath.sqrt(2 * mpmath.log(K))
        # Waudby-Smith et al. (2023) margin with sigma = se*sqrt(N), t = N:
        sigma = se * mpmath.sqrt(N)
        ws = sigma * mpmath.sqrt(2 * (N * rho2 + 1) / (N * N * rho2) * mpmath.log(mpmath.sqrt(N * rho2 + 1) / a))
        assert abs(ws - half) <= mpmath.mpf(10) ** -30 * half
        z = e / se_mix
        M = mpmath.exp(z * z / 2) / mpmath.sqrt(N * rho2 + 1)
        out.update(ciLow=float(e - half), ciHigh=float(e + half))
    else:
        c = mpmath.findroot(lambda c: 2 * mpmath.ncdf(c) * mpmath.exp(c * c / 2) - K,
                            mpmath.sqrt(2 * mpmath.log(K)))
        z = (e if sides == "greater" else -e) / se_mix
        M = 2 * mpmath.ncdf(z) * mpmath.exp(z * z / 2) / mpmath.sqrt(N * rho2 + 1)
        if sides == "greater":
            out.update(ciLow=float(e - c * se_mix), ciHigh=None)
        else:
            out.update(ciLow=None, ciHigh=float(e + c * se_mix))
    out.update(stddev=float(se), pValue=float(min(mpmath.mpf(1), 1 / M)))
    return out


def srm_p(counts, weights):
    idx = [i for i, w in enumerate(weights) if w > 0]
    total = sum(counts[i] for i in idx)
    if len(idx) < 2 or total == 0:
        return None
    wsum = sum(weights[i] for i in idx)
    exp = [total * weights[i] / wsum for i in idx]
    return float(st.chisquare([counts[i] for i in idx], exp).pvalue)


def power_figures(mc, vc, nc, mv, vv, nv, alpha, power, sides, mde):
    """statsmodels NormalIndPower with the effect standardised by σ = se/√(1/n_c + 1/n_v)."""
    if mc is None or mv is None or vc is None or vv is None or mc == 0:
        return None, None
    se2 = float(vv / nv + vc / nc)
    if se2 <= 0:
        return None, None
    se = math.sqrt(se2)
    sigma = se / math.sqrt(1 / nc + 1 / nv)
    pw = NormalIndPower()
    alt = ALT[sides]
    f = lambda d: pw.power(d, nc, alpha, ratio=nv / nc, alternative=alt) - power
    d = brentq(f, 0.0, 1e6, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500) if sides != "less" else \
        brentq(f, -1e6, 0.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    mde_rel = abs(float(d)) * sigma / abs(float(mc))
    achieved = None
    if mde is not None:
        delta = (-1 if sides == "less" else 1) * mde * abs(float(mc))
        achieved = float(pw.power(delta / sigma, nc, alpha, ratio=nv / nc, alternative=alt))
    return mde_rel, achieved


# ---- one analysis ----------------------------------------------------------------------------


def analyze(inp, cuped_units=None):
    metric = inp["metricType"]
    method = inp.get("method", "frequentist")
    alpha = inp.get("alpha", 0.05)
    sides = inp.get("sides", "two")
    kind = inp.get("difference", "relative")
    c, v = inp["control"], inp["variant"]
    nc, nv = c["n"], v["n"]
    mc, vc = moments(metric, c)
    mv, vv = moments(metric, v)
    exp = {
        "control": {"mean": clean(mc), "variance": clean(vc)},
        "variant": {"mean": clean(mv), "variance": clean(vv)},
        "srm": {"pValue": srm_p([nc, nv], inp.get("split", [0.5, 0.5]))},
        "cuped": None,
    }
    exp["srm"]["mismatch"] = None if exp["srm"]["pValue"] is None else exp["srm"]["pValue"] < 0.001
    amc, avc, amv, avv = mc, vc, mv, vv
    if inp.get("cuped"):
        theta, red, amc, avc, amv, avv = cuped_reference(cuped_units)
        exp["cuped"] = {"theta": theta, "varianceReduction": red}
    est, av, ac = diff(amc, avc, nc, amv, avv, nv, kind)
    effect = {"estimate": clean(est) if est is not None else None}
    exp.update(pValue=None, chanceToWin=None, risk=None)
    if method == "frequentist":
        w = welch(est, av, ac, nv, nc, alpha, sides, amc, avc, amv, avv, kind)
        effect.update(stddev=w["stddev"], ciLow=w["ciLow"], ciHigh=w["ciHigh"])
        exp["pValue"] = w["pValue"]
    elif method == "bayesian":
        b = bayes(est, av, ac, alpha, sides, inp.get("prior"))
        effect.update(estimate=b["estimate"], stddev=b["stddev"], ciLow=b["ciLow"], ciHigh=b["ciHigh"])
        exp["chanceToWin"], exp["risk"] = b["chanceToWin"], b["risk"]
    else:
        s = sequential(est, av, ac, nc + nv, alpha, sides, inp.get("sequentialTuning", 5000))
        effect.update(stddev=s["stddev"], ciLow=s["ciLow"], ciHigh=s["ciHigh"])
        exp["pValue"] = s["pValue"]
    exp["effect"] = effect
    mde_rel, achieved = power_figures(amc, avc, nc, amv, avv, nv, alpha, inp.get("power", 0.8), sides,
                                      inp.get("mde"))
    exp["power"] = {"mdeRelative": mde_rel, "achievedPower": achieved}
    return exp


def cuped_reference(units):
    """θ, variance reduction and adjusted moments from raw units [(y_c, x_c), (y_v, x_v)]."""
    (yc, xc), (yv, xv) = units
    cxy = np.cov(xc, yc, ddof=1)[0, 1] * (len(xc) - 1) + np.cov(xv, yv, ddof=1)[0, 1] * (len(xv) - 1)
    cxx = np.var(xc, ddof=1) * (len(xc) - 1) + np.var(xv, ddof=1) * (len(xv) - 1)
    theta = cxy / cxx
    xbar = np.concatenate([xc, xv]).mean()
    ac, av = yc - theta * (xc - xbar), yv - theta * (xv - xbar)
    plain = np.var(yc, ddof=1) / len(yc) + np.var(yv, ddof=1) / len(yv)
    adj = np.var(ac, ddof=1) / len(ac) + np.var(av, ddof=1) / len(av)
    # Cross-check the adjusted Welch test on the units themselves.
    t_units = st.ttest_ind(av, ac, equal_var=False)
    cm = CompareMeans(DescrStatsW(av), DescrStatsW(ac))
    assert abs(cm.ttest_ind(usevar="unequal")[1] - t_units.pvalue) < 1e-12
    return (float(theta), float(1 - adj / plain), Fraction(float(ac.mean())), Fraction(float(np.var(ac, ddof=1))),
            Fraction(float(av.mean())), Fraction(float(np.var(av, ddof=1))))


# ---- the grid --------------------------------------------------------------------------------


def prop_arm(n, conv):
    return {"n": n, "sum": conv}


def mean_arm(values):
    values = [float(x) for x in values]
    return {"n": len(values), "sum": math.fsum(values), "sumSquares": math.fsum(x * x for x in values)}


def synthetic_mean_arm(n, mean, var):
    """Sums of n units with the given mean and (n−1)-variance, as doubles."""
    s = Fraction(mean) * n
    ss = Fraction(var) * (n - 1) + s * s / n
    return {"n": n, "sum": float(s), "sumSquares": float(ss)}


def cases():
    rng = np.random.default_rng(20240517)
    out = []

    def add(name, inp, units=None):
        out.append({"name": name, "input": inp, "units": units})

    prop_pairs = [
        ("typical", (1000, 100), (1000, 120)),
        ("n2_zero_vs_one", (2, 0), (2, 1)),
        ("n2_one_vs_all", (2, 1), (2, 2)),
        ("zero_control_conversions", (10, 0), (12, 3)),
        ("all_conversions_vs_one_miss", (500, 500), (500, 499)),
        ("billion_units", (1_000_000_000, 50_000_000), (1_000_000_000, 50_030_000)),
        ("large_significant", (100000, 3000), (100000, 3300)),
        ("unequal_arms", (50, 5), (80, 20)),
        ("both_zero", (1000, 0), (1000, 0)),
        ("both_all", (40, 40), (40, 40)),
        ("empty_variant", (100, 10), (0, 0)),
        ("huge_effect", (10000, 10), (10000, 2000)),
    ]
    for name, (nc, cc), (nv, cv) in prop_pairs:
        for method in ("frequentist", "bayesian", "sequential"):
            for kind in ("relative", "absolute"):
                for sides in ("two", "greater", "less"):
                    if method != "frequentist" and sides != "two" and name not in ("typical", "large_significant"):
                        continue
                    inp = {"metricType": "proportion", "method": method, "difference": kind, "sides": sides,
                           "alpha": 0.05, "mde": 0.05, "control": prop_arm(nc, cc), "variant": prop_arm(nv, cv)}
                    add(f"proportion_{name}_{method}_{kind}_{sides}", inp)
    # alpha, prior, tuning, split variations
    base = {"metricType": "proportion", "control": prop_arm(20000, 1000), "variant": prop_arm(20100, 1090)}
    add("proportion_alpha01", dict(base, alpha=0.01, mde=0.1))
    add("proportion_bayes_prior", dict(base, method="bayesian", prior={"mean": 0, "variance": 0.09}))
    add("proportion_bayes_tight_prior_absolute", dict(base, method="bayesian", difference="absolute",
                                                       prior={"mean": 0.001, "variance": 1e-6}))
    add("proportion_sequential_tuning1000", dict(base, method="sequential", sequentialTuning=1000))
    add("proportion_sequential_tuning1e6_alpha01", dict(base, method="sequential", sequentialTuning=1e6, alpha=0.1))
    add("proportion_split_60_40", dict(base, split=[0.6, 0.4]))
    add("proportion_split_zero_weight", dict(base, split=[1, 0]))
    add("proportion_power_095", dict(base, power=0.95, mde=0.02))

    # Mean metrics from raw data.
    for n in (2, 3, 30, 1000, 10000):
        yc = rng.lognormal(3.0, 1.0, n)
        yv = rng.lognormal(3.05, 1.1, n + n // 3)
        for method in ("frequentist", "bayesian", "sequential"):
            for kind in ("relative", "absolute"):
                add(f"mean_n{n}_{method}_{kind}", {"metricType": "mean", "method": method, "difference": kind,
                                                   "mde": 0.1, "control": mean_arm(yc), "variant": mean_arm(yv)})
        add(f"mean_n{n}_frequentist_absolute_greater", {"metricType": "mean", "difference": "absolute",
                                                        "sides": "greater", "control": mean_arm(yc),
                                                        "variant": mean_arm(yv)})
    # Tiny variances: absolutely tiny (values ~1e-8), and tiny relative to the mean
    # (sd/mean = 1e-5, so sumSquares − sum²/n keeps only ~6 of a double's 16 digits).
    tiny_c = 1e-8 * rng.lognormal(0, 0.5, 300)
    tiny_v = 1.1e-8 * rng.lognormal(0, 0.5, 300)
    flat_c = 1 + 1e-5 * rng.standard_normal(500)
    flat_v = 1 + 1e-5 * rng.standard_normal(500) + 2e-6
    for kind in ("relative", "absolute"):
        add(f"mean_tiny_absolute_variance_{kind}", {"metricType": "mean", "difference": kind,
                                                    "control": mean_arm(tiny_c), "variant": mean_arm(tiny_v)})
        add(f"mean_tiny_relative_variance_{kind}", {"metricType": "mean", "difference": kind,
                                                    "control": mean_arm(flat_c), "variant": mean_arm(flat_v)})
    add("mean_constant_both", {"metricType": "mean", "difference": "absolute",
                               "control": mean_arm([5.0] * 10), "variant": mean_arm([5.0] * 12)})
    add("mean_n1", {"metricType": "mean", "control": mean_arm([3.0]), "variant": mean_arm([4.0, 5.0])})
    add("mean_billion_units", {"metricType": "mean", "control": synthetic_mean_arm(10 ** 9, 42.5, 900.0),
                               "variant": synthetic_mean_arm(10 ** 9, 42.51, 905.0)})
    add("mean_negative_control_mean", {"metricType": "mean", "control": mean_arm(rng.normal(-5, 2, 200)),
                                       "variant": mean_arm(rng.normal(-4.5, 2, 220))})
    # Published example (R t.test; see the module docstring): variant = ts1, control = ts2.
    ts1 = [11, 9, 10, 11, 10, 12, 9, 11, 12, 9]
    ts2 = [11, 13, 10, 13, 12, 9, 11, 12, 12, 11]
    add("published_welch_r_ttest", {"metricType": "mean", "difference": "absolute",
                                    "control": mean_arm(ts2), "variant": mean_arm(ts1)})

    # CUPED on raw data with a correlated covariate.
    for n, rho, method in ((200, 0.7, "frequentist"), (5000, 0.9, "frequentist"), (5000, 0.5, "bayesian"),
                           (3000, 0.8, "sequential")):
        units = []
        arms = []
        for lift in (0.0, 0.3):
            x = rng.normal(10, 3, n)
            y = 10 + lift + rho * (x - 10) + math.sqrt(1 - rho * rho) * 3 * rng.standard_normal(n)
            units.append((y, x))
            arms.append({"n": n, "sum": math.fsum(y), "sumSquares": math.fsum(y * y), "preSum": math.fsum(x),
                         "preSumSquares": math.fsum(x * x), "sumProducts": math.fsum(x * y)})
        for kind in ("absolute", "relative"):
            add(f"cuped_n{n}_rho{rho}_{method}_{kind}",
                {"metricType": "mean", "method": method, "difference": kind, "cuped": True,
                 "control": arms[0], "variant": arms[1]}, units)
    return out


def srm_cases():
    out = [
        {"name": "published_kohavi_ch21", "counts": [821588, 815482], "weights": [0.5, 0.5]},
        {"name": "balanced", "counts": [1000, 1000], "weights": [1, 1]},
        {"name": "small_imbalance", "counts": [5000, 5200], "weights": [0.5, 0.5]},
        {"name": "unequal_split", "counts": [6050, 3950], "weights": [0.6, 0.4]},
        {"name": "three_arms_one_zero", "counts": [1000, 1100, 7], "weights": [1, 1, 0]},
        {"name": "three_arms", "counts": [3300, 3350, 3250], "weights": [1, 1, 1]},
        {"name": "extreme", "counts": [1000000, 10], "weights": [0.5, 0.5]},
        {"name": "billion", "counts": [1000000000, 1000040000], "weights": [0.5, 0.5]},
    ]
    for c in out:
        c["pValue"] = srm_p(c["counts"], c["weights"])
    return out


def sample_size_cases():
    out = []
    pw = NormalIndPower()
    grid = []
    for p in (0.01, 0.05, 0.1, 0.3, 0.5):
        for mde in (0.01, 0.05, 0.2):
            grid.append(("proportion", p, None, mde, 0.05, 0.8, "two"))
    grid += [
        ("proportion", 0.1, None, 0.1, 0.01, 0.9, "two"),
        ("proportion", 0.1, None, 0.1, 0.05, 0.8, "greater"),
        ("proportion", 0.1, None, 0.1, 0.05, 0.8, "less"),
        ("proportion", 0.9, None, 0.1, 0.1, 0.5, "two"),
        ("mean", 50.0, 400.0, 0.05, 0.05, 0.8, "two"),
        ("mean", 50.0, 400.0, 0.05, 0.05, 0.8, "greater"),
        ("mean", -20.0, 25.0, 0.1, 0.1, 0.95, "less"),
        ("mean", 1.0, 1e-6, 1e-4, 0.05, 0.8, "two"),
    ]
    for metric, b, var, mde, alpha, power, sides in grid:
        sign = -1 if sides == "less" else 1
        if metric == "proportion":
            p1 = b * (1 + sign * mde)
            vc, vv, delta = b * (1 - b), p1 * (1 - p1), p1 - b
        else:
            vc = vv = var
            delta = sign * mde * abs(b)
        sigma = math.sqrt((vc + vv) / 2)
        # statsmodels' power function, solved tightly (its solve_power stops at ~1e-6).
        f = lambda n: pw.power(delta / sigma, n, alpha, ratio=1.0, alternative=ALT[sides]) - power
        n = brentq(f, 1e-6, 1e18, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        achieved = float(pw.power(delta / sigma, n, alpha, ratio=1.0, alternative=ALT[sides]))
        assert abs(achieved - power) < 1e-9
        out.append({"metric": metric, "baseline": b, "variance": var, "mde": mde, "alpha": alpha,
                    "power": power, "sides": sides, "unitsPerArm": n, "effect": delta})
    # Rule of thumb (published): 16σ²/δ² per arm at α = 0.05, power 0.8 — recorded for the test.
    out.append({"metric": "mean", "baseline": 100.0, "variance": 100.0, "mde": 0.01, "alpha": 0.05,
                "power": 0.8, "sides": "two", "unitsPerArm": None, "ruleOfThumb": 16 * 100.0 / 1.0,
                "effect": 1.0})
    return out


def main():
    analyze_vectors = []
    for c in cases():
        exp = analyze(c["input"], c["units"])
        analyze_vectors.append({"name": c["name"], "input": c["input"], "expected": exp})
    with open(os.path.join(HERE, "analyze.json"), "w") as f:
        json.dump(analyze_vectors, f, indent=1, allow_nan=False)
        f.write("\n")
    with open(os.path.join(HERE, "srm.json"), "w") as f:
        json.dump(srm_cases(), f, indent=1, allow_nan=False)
        f.write("\n")
    with open(os.path.join(HERE, "sample_size.json"), "w") as f:
        json.dump(sample_size_cases(), f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"{len(analyze_vectors)} analyze vectors written")


if __name__ == "__main__":
    main()
