"""`mlstress-tui compare BASE NEW`: two runs (or two accept reports) side by side, judged against their own noise, gated."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlstress_tui.analysis.acceptance import suspect_reason
from mlstress_tui.analysis.compare import (ALPHA, MIN_SECONDS, RESOLUTION, TRIM_FROM, Comparison, Difference, compare_sections,
                                           default_bounds, differences, parse_bounds)
from mlstress_tui.errors import EXIT_CRITERIA_FAILED, EXIT_FAULT, EXIT_OK, EXIT_USAGE, UsageError
from mlstress_tui.paths import default_run_dir
from mlstress_tui.report.compare_report import build_compare, compare_text, differences_text, gate_report, write_compare
from mlstress_tui.report.pushgateway import COMPARE_JOB, PushError, check_pushgateway, push_verdict, shown_url
from mlstress_tui.report.run_dir import ReportRecord, RunRecord, read_compared

# Which refusing fields make two runs "different targets", "different load shapes", and so on, in the one line.
_KINDS_OF_DIFFERENCE = {
    "target kind": "targets", "database users": "targets", "database events": "targets", "database seed": "targets",
    "run kind": "load shapes", "load mode": "load shapes", "levels": "load shapes", "user mix": "load shapes",
    "arrivals": "load shapes", "stages": "presets", "preset": "presets", "tool version": "tool versions",
}
METHOD_DESCRIPTION = (
    f"a change counts when the Mann-Whitney rank test on the two runs' per-second figures gives p < {ALPHA:g}, "
    f"it is larger than either run's own span of per-second figures (the middle 90% from {TRIM_FROM} seconds on), "
    f"and, for a percentile, more than one histogram bucket ({RESOLUTION:.1%})")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs or accept reports: what changed beyond the noise, and gate on regressions",
        description="Compare BASE with NEW, level by level (matched by the commanded level) or stage by stage "
                    "(matched by name): p50, p95, p99, throughput, error rate and pool wait p95, each judged "
                    "against the two runs' own second-to-second noise; for a ramp its knee, safe level and N*, "
                    "for heavy users the breach event count and the heavy strata's p95. Writes compare.md, "
                    "compare.json and junit.xml. Exit 0 when nothing regressed beyond its bound outside the "
                    "noise, 1 when something did, 2 for bad input.")
    parser.add_argument("base", type=Path, metavar="BASE", help="run or accept report directory: what you ship today")
    parser.add_argument("new", type=Path, metavar="NEW", help="run or accept report directory: the change")
    parser.add_argument("--max-regression", action="append", metavar="BOUND", default=[],
                        help="how much worse a metric may get, outside the noise, before the gate fails: 10%% "
                             "(every metric but the error rate; the default), or per metric p50=5%%,p95=5%%,"
                             "p99=20%%,throughput=3%%,pool_wait=5%% (of the base latency p95),error_rate=0.5%% "
                             "(points of requests; default 0: any rise outside the noise fails); repeatable")
    parser.add_argument("--force", action="store_true",
                        help="compare runs that differ in target, database, load shape, preset or tool version")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="where compare.md, compare.json and junit.xml go (default ./mlstress-runs/<UTC timestamp>/)")
    parser.add_argument("--pushgateway", metavar="URL",
                        help="push the verdict and each gated metric's change against its bound to this Prometheus "
                             f"Pushgateway (job {COMPARE_JOB}), e.g. http://127.0.0.1:9091; checked before comparing")
    parser.set_defaults(func=run)


def _bounds(texts: list[str]) -> dict[str, float]:
    bounds = default_bounds()
    for text in texts:
        try:
            bounds = parse_bounds(text, bounds)
        except ValueError as error:
            raise UsageError(f"--max-regression: {error}") from None
    return bounds


def check_comparable(base: str, new: str, found: Sequence[Difference], *, force: bool | None) -> None:
    """The one rule for two runs put side by side (compare, show --baseline, the dashboard's --baseline): a difference
    that refuses is one line of bad input, or with --force a warning. `force` None: the command has no --force."""
    refusing = [difference for difference in found if difference.refuses]
    if not refusing:
        return
    if not force:
        advice = ("pass --force to compare them anyway" if force is not None else
                  "choose a baseline run of the same target, database and load mode")
        raise UsageError(f"{base!r} and {new!r} are not comparable: {_what_differs(refusing)}; {advice}")
    print(f"warning: {_what_differs(refusing)}: compared anyway (--force)", file=sys.stderr)


def all_differences(base: RunRecord | ReportRecord, new: RunRecord | ReportRecord) -> tuple[Difference, ...]:
    """The two sides' differences: the runs', or the reports' and each common stage's (prefixed with the stage)."""
    if isinstance(base, RunRecord) and isinstance(new, RunRecord):
        return differences(base.identity, new.identity, ramps=base.kind == new.kind == "ramp")
    assert isinstance(base, ReportRecord) and isinstance(new, ReportRecord)
    found = list(differences(base.identity, new.identity))
    for name, record in base.stages.items():
        other = new.stages.get(name)
        if record is None or other is None:
            continue
        for difference in differences(record.identity, other.identity, ramps=record.kind == other.kind == "ramp"):
            if difference.field in base.identity:  # said once, for the whole report
                continue
            found.append(Difference(f"stage {name}: {difference.field}", difference.base, difference.new,
                                    difference.refuses))
    return tuple(sorted(found, key=lambda difference: not difference.refuses))


def _what_differs(refusing: list[Difference]) -> str:
    """`different targets (target kind sleep vs sqlite); different load shapes (…)`: the refusal in words."""
    kinds: dict[str, list[str]] = {}
    for difference in refusing:
        field = difference.field.rpartition(": ")[2]
        kinds.setdefault(_KINDS_OF_DIFFERENCE.get(field, field), []).append(
            f"{difference.field} {_short(difference.base)} vs {_short(difference.new)}")
    return "; ".join(f"different {kind} ({', '.join(fields)})" for kind, fields in kinds.items())


def _short(value: object) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return str(value)


def _side(record: RunRecord | ReportRecord) -> dict:
    """How compare.json describes one side: its path, what it is, and what to keep in mind about it."""
    if isinstance(record, RunRecord):
        notes = list(record.notes)
        reason = suspect_reason(record.summary)
        if reason:
            notes.append(f"measurement suspect: {reason}")
        return {"path": str(record.path), "kind": record.kind, "target": record.identity.get("target"),
                "target_kind": record.identity.get("target kind"), "label": record.summary.get("label"),
                "preset": record.summary.get("preset"), "harness_verdict": (record.summary.get("harness") or {}).get("verdict"), "notes": notes}
    stages_by_note: dict[str, list[str]] = {}
    for name, stage in record.stages.items():
        if stage is None:
            continue
        reason = suspect_reason(stage.summary)
        for note in [*stage.notes, *([f"measurement suspect: {reason}"] if reason else [])]:
            stages_by_note.setdefault(note, []).append(name)
    ran = [name for name, stage in record.stages.items() if stage is not None]
    notes = [f"{'every stage' if names == ran and len(ran) > 1 else 'stage ' + ', '.join(names)}: {note}"
             for note, names in stages_by_note.items()]
    return {"path": str(record.path), "kind": "accept", "preset": record.report.get("preset"),
            "target": record.identity.get("target"), "target_kind": record.identity.get("target kind"),
            "label": record.report.get("label"), "verdict": record.report.get("verdict"), "notes": notes}


def _sections(base: RunRecord | ReportRecord, new: RunRecord | ReportRecord, bounds: dict[str, float]):
    if isinstance(base, RunRecord) and isinstance(new, RunRecord):
        return compare_sections({"": base}, {"": new}, bounds)
    assert isinstance(base, ReportRecord) and isinstance(new, ReportRecord)
    return compare_sections(base.stages, new.stages, bounds)


def compared(base: RunRecord | ReportRecord, new: RunRecord | ReportRecord, bounds: dict[str, float],
             found: tuple[Difference, ...]) -> tuple[Comparison, dict]:
    """The comparison and its compare.json document: what `compare` writes and `show --baseline` draws."""
    comparison = Comparison(sections=_sections(base, new, bounds), differences=found, bounds=bounds)
    document = build_compare(comparison, base=_side(base), new=_side(new),
                             forced=any(difference.refuses for difference in found),
                             method={"test": "mann-whitney-u", "alpha": ALPHA, "resolution": RESOLUTION,
                                     "trim_from_seconds": TRIM_FROM, "description": METHOD_DESCRIPTION})
    return comparison, document


def _out_dir(args: argparse.Namespace) -> Path:
    out = args.out if args.out is not None else default_run_dir()
    if (out / "compare.json").exists():
        out = out / default_run_dir().name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create output directory {str(out)!r}: {error.strerror}") from None
    return out


def run(args: argparse.Namespace) -> int:
    bounds = _bounds(args.max_regression)
    if args.pushgateway is not None:  # a gate whose verdict could not be delivered is said before it runs
        check_pushgateway(args.pushgateway)
    base, new = read_compared(args.base), read_compared(args.new)
    if isinstance(base, ReportRecord) != isinstance(new, ReportRecord):
        report, plain = ("BASE", "NEW") if isinstance(base, ReportRecord) else ("NEW", "BASE")
        raise UsageError(f"{report} is an accept report and {plain} a single run: compare a report with a report "
                         "(stage by stage) or a run with a run")
    found = all_differences(base, new)
    refusing = [difference for difference in found if difference.refuses]
    if refusing and not args.force:
        print(differences_text({"differences": [vars(d) for d in found]}), flush=True)
    check_comparable(str(args.base), str(args.new), found, force=args.force)
    comparison, document = compared(base, new, bounds, found)
    out = _out_dir(args)
    written = write_compare(document, out)
    print(compare_text(document))
    print("  written: " + ", ".join(str(path) for path in written), flush=True)
    if args.pushgateway is not None and not _push(args.pushgateway, document):
        return EXIT_FAULT
    if comparison.regressions:
        return EXIT_CRITERIA_FAILED
    if not comparison.judged:
        # A gate that cannot judge must not pass: runs this short would pass every change.
        print(f"mlstress-tui compare: error: nothing could be judged ({comparison.unjudged_reason}): run each "
              f"level longer (the rank test needs {MIN_SECONDS} clean seconds a side)", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _push(url: str, document: dict) -> bool:
    """The verdict to the Pushgateway, said in one line either way; whether it arrived."""
    try:
        push_verdict(url, COMPARE_JOB, gate_report(document), passed=document["verdict"] == "PASS")
    except PushError as error:
        print(f"mlstress-tui compare: error: {error} (the verdict above is the comparison's; Prometheus does not "
              "have it)", file=sys.stderr, flush=True)
        return False
    print(f"  pushed to the Pushgateway at {shown_url(url)} (job {COMPARE_JOB})", flush=True)
    return True

