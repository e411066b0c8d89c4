"""Ramp analysis: the knee, the cliff, the USL fit and ramp.json, on seeded synthetic systems."""

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mlstress_tui.analysis import ramp
from mlstress_tui.analysis.acceptance import evaluate
from mlstress_tui.analysis.ramp import RampStep, UslFit, find_knee, fit_usl, past_cliff, ramp_report
from mlstress_tui.stages import Criterion

SLA = 200.0


def step(level, throughput, p95, *, mode="closed", errors=0, requests=None, mean=None, seconds=5.0):
    """One ramp step with the figures a test cares about and plausible others."""
    requests = int(throughput * seconds) if requests is None else requests
    mean = p95 * 0.8 if mean is None else mean
    return RampStep(
        mode=mode, level=level, seconds=seconds, requests=requests, errors=errors,
        throughput_rps=throughput, p50_ms=p95 * 0.7, p95_ms=p95, p99_ms=p95 * 1.3,
        pool_wait_p95_ms=None, mean_latency_ms=mean,
        offered_rps=level if mode == "open" else None,
    )


def saturating(levels, *, slots=4, service_ms=5.0):
    """A pool of `slots` workers serving `service_ms` requests: linear up to `slots` users, then queueing."""
    return [step(n, min(n, slots) * 1000 / service_ms, service_ms * max(1.0, n / slots)) for n in levels]


def test_knee_of_a_saturating_system_is_its_pool_size_and_usl_sees_the_peak():
    steps = saturating([1, 2, 3, 4, 5, 6, 8])
    knee = find_knee(steps, sla_p95_ms=SLA)
    assert (knee.knee_level, knee.safe_level) == (4, 4)
    assert knee.reason.startswith("4 users: the last step within the SLA")
    assert "at 5 users it grew +0%" in knee.reason
    fit = fit_usl([s.level for s in steps], [s.throughput_rps for s in steps])
    assert fit is not None and 2.5 <= fit.peak_concurrency <= 8 and fit.r2 > 0.8


def test_doubling_ramp_finds_the_same_knee():
    assert find_knee(saturating([1, 2, 4, 8, 16, 32]), sla_p95_ms=SLA).knee_level == 4


def test_usl_fit_recovers_known_coefficients():
    truth = UslFit(lam=1000.0, sigma=0.05, kappa=0.002, peak_concurrency=math.sqrt(0.95 / 0.002), r2=1.0)
    n = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    fit = fit_usl(n, truth.throughput(n))
    assert fit is not None
    assert fit.lam == pytest.approx(truth.lam, rel=0.05)
    assert fit.sigma == pytest.approx(truth.sigma, rel=0.05)
    assert fit.kappa == pytest.approx(truth.kappa, rel=0.05)
    assert fit.peak_concurrency == pytest.approx(truth.peak_concurrency, rel=0.05)
    assert fit.r2 > 0.999


def test_usl_fit_on_noisy_repeated_steps():
    rng = np.random.default_rng(7)
    truth = UslFit(lam=500.0, sigma=0.1, kappa=0.01, peak_concurrency=None, r2=1.0)
    n = np.repeat([1, 2, 4, 6, 8, 12, 16], 3).astype(float)
    fit = fit_usl(n, truth.throughput(n) * rng.normal(1.0, 0.02, n.size))
    assert fit is not None
    assert fit.peak_concurrency == pytest.approx(math.sqrt(0.9 / 0.01), rel=0.15)


def flat_sleep_ramp(levels, *, sleep_ms=50.0, noise=0.0, seed=3):
    """A target with no limit at all (a pure sleep): throughput N / sleep at every N, measured with some noise."""
    n = np.asarray(levels, dtype=float)
    return n, n * 1000 / sleep_ms * np.random.default_rng(seed).normal(1.0, noise, n.size)


@pytest.mark.parametrize("noise", [0.0, 0.002, 0.01])
def test_a_flat_sleep_ramp_has_no_retrograde_term_and_no_peak(noise):
    n, x = flat_sleep_ramp([1, 2, 4, 8, 16, 32, 64], noise=noise)
    fit = fit_usl(n, x)
    assert fit is not None
    assert fit.kappa == 0 and fit.peak_concurrency is None
    assert fit.peak_note == "no retrograde term: throughput did not fall"
    assert fit.lam == pytest.approx(20.0, rel=0.02)
    report = ramp_report([step(level, rate, 50.0) for level, rate in zip(n, x)], sla_p95_ms=SLA)
    assert report["usl"]["peak_concurrency"] is None and report["usl"]["kappa"] == 0
    # A criterion on the missing peak fails, saying why; it never passes on a number the fit made up.
    [result] = evaluate([Criterion("cliff", "usl_peak_concurrency", ">=", 1000)],
                        {"cliff": {"usl_peak_concurrency": report["usl"]["peak_concurrency"]}},
                        why_missing={"cliff": {"usl_peak_concurrency": report["usl"]["peak_note"]}})
    assert result.passed is False and result.note == "not measured: no retrograde term: throughput did not fall"


def test_a_real_retrograde_term_is_kept_beside_a_floored_one():
    truth = UslFit(lam=200.0, sigma=0.0, kappa=0.0005, peak_concurrency=None, r2=1.0)
    n = np.array([1, 2, 4, 8, 16, 32, 64], dtype=float)
    fit = fit_usl(n, truth.throughput(n))
    assert fit.kappa == pytest.approx(0.0005, rel=0.05) and fit.sigma == 0
    assert fit.peak_concurrency == pytest.approx(math.sqrt(1 / 0.0005), rel=0.05) and fit.peak_note is None


def test_throughput_that_fell_keeps_its_retrograde_term_even_from_four_levels():
    # Too few levels for the F-test to see anything, but the fall from 4,500 to 2,000 req/s is in the data.
    fit = fit_usl([4, 8, 16, 32], [2000.0, 4000.0, 4500.0, 2000.0])
    assert fit.kappa > 0 and 8 <= fit.peak_concurrency <= 20 and fit.peak_note is None


def test_usl_fit_needs_three_distinct_levels_with_throughput():
    assert fit_usl([1, 2], [100, 200]) is None
    assert fit_usl([1, 1, 2, 2], [100, 100, 200, 200]) is None
    assert fit_usl([1, 2, 4], [100, 200, 0]) is None


def test_next_step_breaking_the_p95_sla_is_named_in_the_reason():
    steps = [step(1, 200, 5), step(2, 400, 6), step(4, 780, 250)]
    knee = find_knee(steps, sla_p95_ms=SLA)
    assert knee.knee_level == 2
    assert "at 4 users the SLA broke: p95 250.0 ms > 200 ms" in knee.reason


def test_first_step_already_breaking_the_sla_gives_no_safe_level():
    knee = find_knee([step(1, 200, 300), step(2, 300, 400)], sla_p95_ms=SLA)
    assert knee.knee_level is None and knee.safe_level is None
    assert "first step (1 user) already breaks the SLA: p95 300.0 ms > 200 ms" in knee.reason


def test_error_rate_breach_stops_the_knee():
    steps = [step(1, 200, 5), step(2, 400, 5), step(4, 800, 5, errors=200), step(8, 1600, 5)]
    knee = find_knee(steps, sla_p95_ms=SLA)
    assert knee.knee_level == 2
    assert "error rate 5.0% > 1.0%" in knee.reason


def test_a_ramp_that_never_bent_says_to_raise_max():
    knee = find_knee(saturating([1, 2, 3], slots=16), sla_p95_ms=SLA)
    assert knee.knee_level == 3
    assert "cliff was not reached: raise --max" in knee.reason


def test_a_short_ramp_still_makes_valid_json():
    report = ramp_report([step(1, 200, 5), step(2, float("nan"), 6, requests=10)], sla_p95_ms=SLA, stopped_because="stopped")
    assert report["usl"] is None
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["steps"][1]["throughput_rps"] is None
    assert report["schema"] == "mlstress.ramp/1" and report["stopped_because"] == "stopped"


def test_closed_loop_report_gives_knee_and_usl():
    report = ramp_report(saturating([1, 2, 3, 4, 5, 6, 8]), sla_p95_ms=SLA)
    assert report["knee_concurrency"] == 4 and report["safe_concurrency"] == 4
    assert "knee_rate" not in report
    assert set(report["usl"]) == {"lambda", "sigma", "kappa", "peak_concurrency", "peak_note", "r2"}
    assert report["steps"][0]["concurrency"] == 1 and report["steps"][0]["error_rate"] == 0
    json.dumps(report, allow_nan=False)


def test_past_cliff_when_p95_is_over_the_sla():
    reason = past_cliff([step(1, 200, 5), step(2, 400, 250)], sla_p95_ms=SLA)
    assert reason is not None and "p95 250.0 ms > 200 ms" in reason


def test_past_cliff_when_throughput_falls_by_a_fifth():
    reason = past_cliff([step(1, 200, 5), step(2, 400, 6), step(4, 320, 7)], sla_p95_ms=SLA)
    assert reason is not None and "throughput fell" in reason and "20% below" in reason


def test_past_cliff_when_saturated_and_queueing():
    reason = past_cliff(saturating([1, 2, 4, 8, 16]), sla_p95_ms=SLA)
    assert reason is not None and reason.startswith("saturated at 16 users")


def test_not_past_cliff_while_growing_steadily():
    steps = saturating([1, 2, 4, 8], slots=64)
    assert all(past_cliff(steps[: i + 1], sla_p95_ms=SLA) is None for i in range(len(steps)))
    noisy = [step(1, 200, 5), step(2, 400, 5), step(4, 380, 5)]  # 5% down is noise, not a cliff
    assert past_cliff(noisy, sla_p95_ms=SLA) is None


def test_open_loop_uses_littles_law_and_reports_knee_rate():
    # 4 slots of 5 ms: throughput follows the offered rate up to 800 req/s, then latency grows.
    rates, served, means = [200, 400, 600, 800, 1000], [200, 400, 600, 790, 800], [5, 5, 5, 6, 40]
    steps = [step(r, x, m * 1.5, mode="open", mean=m) for r, x, m in zip(rates, served, means)]
    assert steps[3].concurrency == pytest.approx(790 * 6 / 1000)
    report = ramp_report(steps, sla_p95_ms=SLA)
    assert report["mode"] == "open"
    assert report["knee_rate"] == 800 and report["safe_rate"] == 800
    assert report["knee_concurrency"] == pytest.approx(4.7)
    assert "800 req/s: the last step within the SLA" in report["reason"]
    assert report["usl"] is not None
    json.dumps(report, allow_nan=False)


def test_open_loop_step_without_latency_has_no_concurrency():
    s = RampStep("open", 100, 5, 0, 0, 0.0, None, None, None, None, None)
    assert s.concurrency is None and s.error_rate == 0
    assert s.to_json()["concurrency"] is None


def test_analysis_imports_only_numpy_scipy_and_the_standard_library():
    tree = ast.parse(Path(ramp.__file__).read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    # The house's number formatter is a leaf (no imports of its own): its lines read as every other line does.
    roots |= {module.split(".")[0] for module in modules - {"mlstress_tui.results.units"}}
    assert roots <= {"__future__", "math", "dataclasses", "typing", "numpy", "scipy"}
