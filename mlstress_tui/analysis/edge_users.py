"""What the edge users did to the pipeline: errors by edge class (no events, missing profile fields, heaviest, unknown).

For an id no database holds the right answer is "no such user" (`missing_user`:
HTTP 404, `None` or a `LookupError` from a python target). Features for it are
the wrong answer: each is an `answered_unknown` failure of the unknown class,
counted in `edge_errors` like a crash.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlstress_tui.load.users import EDGE_CLASSES
from mlstress_tui.results.interval_stats import UserGroupStats

SCHEMA = "mlstress.edge/1"
UNKNOWN_CLASS = "unknown_user"
ANSWERED_UNKNOWN = "answered_unknown"
# An unknown user answered "no such user" is the pipeline doing its job, not an edge-case failure.
EXPECTED = {UNKNOWN_CLASS: {"missing_user"}}


def edge_report(classes: Mapping[int, UserGroupStats], class_sizes: Mapping[str, int]) -> dict:
    """edge.json: per edge class its users, requests, errors by kind and latency; `edge_errors` counts the failures."""
    rows = []
    failures = 0
    for index, name in enumerate(EDGE_CLASSES):
        group = classes.get(index, UserGroupStats())
        wrong = {kind: count for kind, count in group.errors_by_kind.items()
                 if kind not in EXPECTED.get(name, set())}
        if name == UNKNOWN_CLASS and group.requests > group.errors:
            # Answered with features: a success for a user who does not exist.
            wrong[ANSWERED_UNKNOWN] = group.requests - group.errors
        failures += sum(wrong.values())
        rows.append({"class": name, "users": class_sizes.get(name, 0), "requests": group.requests,
                     "errors": group.errors, "failures": sum(wrong.values()),
                     "errors_by_kind": dict(sorted(group.errors_by_kind.items())),
                     "failures_by_kind": dict(sorted(wrong.items())),
                     "p95_ms": group.latency.percentile_ms(95)})
    return {"schema": SCHEMA, "classes": rows, "edge_errors": failures}


def edge_lines(report: dict) -> list[str]:
    """One line per edge class, as a person reads them."""
    lines = []
    for row in report["classes"]:
        if not row["requests"]:
            lines.append(f"{row['class']:16} not sent ({row['users']} such users in the database)")
            continue
        kinds = ", ".join(f"{kind} {count}" for kind, count in row["errors_by_kind"].items()) or "none"
        flag = "  <- fails here" if row["failures"] else ""
        answered = (row.get("failures_by_kind") or {}).get(ANSWERED_UNKNOWN)
        if answered:
            kinds += f"; answered {answered:,} with features for ids nobody holds ({ANSWERED_UNKNOWN})"
        lines.append(f"{row['class']:16} {row['requests']:>6,} requests  errors: {kinds}{flag}")
    return lines
