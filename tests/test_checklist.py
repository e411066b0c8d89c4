"""The release checklist on what a suite measured: each item's status and the evidence it names."""

from __future__ import annotations

import numpy as np

from mlstress_tui.analysis.checklist import FAIL, NOT_CHECKED, PASS, ChecklistInputs, release_checklist
from mlstress_tui.stages import COMPLETED, LoadStage, OutliersStage, RampStage, StageEnd

STAGES = (LoadStage(name="moderate", concurrency=20, requests=1000), LoadStage(name="peak", concurrency=100,
          requests=1000), OutliersStage(name="heavy", threshold_ms=500.0), RampStage(name="cliff", max=32))
LOAD = {"p50_ms": 1.0, "p95_ms": 40.0, "p99_ms": 90.0, "error_rate": 0.0, "throughput_rps": 2500.0}


def inputs(**changes: object) -> ChecklistInputs:
    counts = np.minimum(np.floor(np.random.default_rng(1).pareto(1.2, 10_000) * 20), 50_000)
    base = dict(
        stages=STAGES,
        measured={"moderate": LOAD, "peak": {**LOAD, "p95_ms": 120.0}, "heavy": {"breach_event_count": None},
                  "cliff": {"safe_concurrency": 32.0}},
        ends={name: StageEnd(COMPLETED) for name in ("moderate", "peak", "heavy", "cliff")},
        criteria=[{"stage": "peak", "metric": "error_rate", "op": "<", "threshold": 0.01, "passed": True,
                   "judged": True}],
        sla_p95_ms=100.0, database={"users": 100_000, "events": 4_500_000},
        event_count_shape={"p50": float(np.percentile(counts, 50)), "p99": float(np.percentile(counts, 99)),
                           "max": float(counts.max()), "mean": float(counts.mean())},
        profile_rows={"users": 110_000, "events": 4_000_000}, junit_written=True,
        outliers={"breach_event_count": None, "judged": True, "action": "no user breaches"}, cache=None,
        target_concurrency=20, target_rps=None)
    base.update(changes)
    return ChecklistInputs(**base)  # type: ignore[arg-type]


def by_key(checklist: ChecklistInputs) -> dict[str, tuple[str, str]]:
    return {item.key: (item.status, item.evidence) for item in release_checklist(checklist)}


def test_a_suite_that_did_everything_passes_every_item_with_evidence():
    items = by_key(inputs())
    assert {key: status for key, (status, _) in items.items()} == {key: PASS for key in items}
    assert "users 100,000 vs production 110,000 (-9%)" in items["volume"][1]
    assert "moderate: p50" in items["percentiles"][1] and "peak: p50" in items["percentiles"][1]
    assert "stage moderate: 2,500.0 req/s at 20 users" in items["throughput"][1]


def test_uniform_data_is_not_heavy_tailed():
    items = by_key(inputs(event_count_shape={"p50": 45.0, "p99": 60.0, "max": 80.0, "mean": 45.0}))
    assert items["heavy_tail"][0] == FAIL and "p99/p50 1.3" in items["heavy_tail"][1]


def test_a_peak_without_an_error_gate_fails_and_says_what_to_add():
    status, evidence = by_key(inputs(criteria=[]))["peak_errors"]
    assert status == FAIL and "add error_rate" in evidence


def test_the_cache_verified_or_not():
    cache = {"at_least_events": 2730}
    assert by_key(inputs(cache=cache))["heavy_users"][0] == PASS
    status, evidence = by_key(inputs(cache=cache, outliers={"breach_event_count": 2400, "judged": True,
                                                            "action": "lower --cache-above"}))["heavy_users"]
    assert status == FAIL and "still breach" in evidence


def test_what_was_not_given_is_not_checked_with_the_reason():
    items = by_key(inputs(profile_rows=None, target_concurrency=None, event_count_shape=None))
    assert items["volume"][0] == items["throughput"][0] == items["heavy_tail"][0] == NOT_CHECKED
    assert "--profile FILE" in items["volume"][1] and "target_concurrency" in items["throughput"][1]


def test_throughput_at_the_target_fails_when_no_stage_carried_it_within_the_sla():
    status, evidence = by_key(inputs(target_concurrency=64))["throughput"]
    assert status == FAIL and "64 users" in evidence and "safe level 32" in evidence
