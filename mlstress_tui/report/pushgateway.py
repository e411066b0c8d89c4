"""A gate's verdict and each criterion's measurement pushed to a Prometheus Pushgateway (`--pushgateway URL`).

CI gates (`accept`, and `compare`) end before any Prometheus could scrape them;
the Pushgateway keeps their last verdict for it. A push is a PUT of the group
`job` / `preset` (prometheus_client's `push_to_gateway`): the gate's newest
verdict replaces its last, and the `label` (--label: a build, a commit) keeps
them apart on a dashboard. A password in the URL is sent as HTTP basic
authentication and never shown: every line names the URL without it.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from mlstress_tui.errors import UsageError
from mlstress_tui.redaction import ENCODE_HINT, has_bad_percent, password_of, scrub, secrets_in, unquoted_tokens, user_info

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

ACCEPT_JOB = "mlstress_accept"
COMPARE_JOB = "mlstress_compare"
# The verdicts a gate can reach (stages.verdict_of); another gate's own verdict is pushed beside them.
VERDICTS = ("PASS", "FAIL", "INCOMPLETE")
# How long a push or the check at the start may take before it is said not to answer.
TIMEOUT_S = 10.0
# The labels of every series pushed (the grouping key adds `job` and `preset`): never a URL, a DSN or a user id.
GATE_LABELS = ("label", "target")
CRITERION_LABELS = (*GATE_LABELS, "stage", "metric", "op")


class PushError(Exception):
    """A push that did not arrive, in one line that names the Pushgateway without its credentials."""


def shown_url(url: str) -> str:
    """The Pushgateway's URL as every line shows it: scheme, host, port and path, never a user or password."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        host = parts.hostname or ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def gateway_parts(url: str) -> tuple[str, str | None, str | None]:
    """The URL without its credentials, and the user and password in it (decoded); one line when it is no URL."""
    hint = f"; {ENCODE_HINT}" if password_of(url) is not None else ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError as error:
        reason = scrub(unquoted_tokens(str(error)), secrets_in(url))
        raise UsageError(f"--pushgateway is not a valid URL ({reason}): write http://host:9091{hint}") from None
    meant = user_info(url)
    parsed = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    if meant != parsed or meant is not None and ("@" in meant or has_bad_percent(meant)):
        raise UsageError(f"--pushgateway can be read two ways: {ENCODE_HINT}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--pushgateway {shown_url(url)!r} must be http:// or https:// with a host, "
                         "e.g. http://127.0.0.1:9091")
    if parts.query or parts.fragment:
        raise UsageError(f"--pushgateway {shown_url(url)!r} takes no query or fragment: write http://host:9091")
    netloc = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, user, password


def check_pushgateway(url: str) -> None:
    """Before a gate runs: a URL that can be read one way only, and something answering there (one line if not)."""
    clean, _, _ = gateway_parts(url)
    try:
        with urllib.request.urlopen(f"{clean}/-/healthy", timeout=TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        return  # something answered (a proxy asking for the password it will be given): the push will tell
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(f"nothing answers at --pushgateway {shown_url(url)} ({_words(reason, url)}): start the "
                         "Pushgateway or correct the URL") from None


def push_verdict(url: str, job: str, report: Mapping[str, Any], *, passed: bool | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
    """Push a gate's report (`verdict`, `preset`, `label`, `target.kind`, `criteria`) to the Pushgateway at `url`.

    `report` is shaped as report.json (mlstress.report/1): each criterion a
    mapping with `stage`, `metric`, `op`, `threshold`, `measured`, `passed`
    and `judged` (missing ones are left out). `passed` defaults to the verdict
    being PASS. Raises PushError when the push did not arrive.
    """
    from prometheus_client import push_to_gateway
    from prometheus_client.exposition import basic_auth_handler, default_handler

    clean, user, password = gateway_parts(url)
    handler = partial(basic_auth_handler, username=user, password=password) if user is not None else default_handler
    grouping = {"preset": str(report.get("preset") or "")}
    try:
        push_to_gateway(clean, job=job, registry=gate_registry(report, passed=passed), grouping_key=grouping,
                        timeout=timeout_s, handler=handler)
    except urllib.error.HTTPError as error:
        said = error.read().decode("utf-8", "replace").strip().splitlines()
        reason = f"{error.code} {error.reason}" + (f": {said[0][:200]}" if said else "")
        raise PushError(f"the Pushgateway at {shown_url(url)} refused the verdict (job {job}): "
                        f"{_words(reason, url)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise PushError(f"cannot push the verdict to {shown_url(url)} (job {job}): {_words(reason, url)}") from None


def gate_registry(report: Mapping[str, Any], *, passed: bool | None = None) -> CollectorRegistry:
    """The families a push sends: the verdict (as a state set and as passed 0/1) and each criterion."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    verdict = str(report.get("verdict") or "")
    target = report.get("target")
    labels = [str(report.get("label") or ""), str(target.get("kind") or "") if isinstance(target, Mapping) else ""]
    registry = CollectorRegistry(auto_describe=False)
    families: list[GaugeMetricFamily] = []

    states = GaugeMetricFamily("mlstress_gate_verdict", "The gate's verdict: 1 for the one it reached",
                               labels=[*GATE_LABELS, "verdict"])
    # Every verdict this gate can reach is pushed (0 or 1), so a dashboard sees the same series after each push.
    for state in dict.fromkeys((*(report.get("verdicts") or VERDICTS), verdict)):
        if state:
            states.add_metric([*labels, state], 1.0 if state == verdict else 0.0)
    families.append(states)
    gate_passed = GaugeMetricFamily("mlstress_gate_passed", "1 when the gate passed, else 0", labels=GATE_LABELS)
    gate_passed.add_metric(labels, 1.0 if (verdict == "PASS" if passed is None else passed) else 0.0)
    families.append(gate_passed)
    duration = report.get("duration_s")
    if _finite(duration):
        seconds = GaugeMetricFamily("mlstress_gate_duration_seconds", "How long the gate ran", labels=GATE_LABELS)
        seconds.add_metric(labels, float(duration))
        families.append(seconds)

    criteria = [criterion for criterion in report.get("criteria") or () if isinstance(criterion, Mapping)]
    per_criterion = {
        "passed": GaugeMetricFamily("mlstress_gate_criterion_passed", "1 when the criterion held, else 0",
                                    labels=CRITERION_LABELS),
        "judged": GaugeMetricFamily("mlstress_gate_criterion_judged", "1 when the criterion was judged on a "
                                    "measurement, 0 when it could not be", labels=CRITERION_LABELS),
        "measured": GaugeMetricFamily("mlstress_gate_criterion_measured", "What the criterion's stage measured, "
                                      "in the metric's own unit", labels=CRITERION_LABELS),
        "threshold": GaugeMetricFamily("mlstress_gate_criterion_threshold", "The criterion's threshold, in the "
                                       "metric's own unit", labels=CRITERION_LABELS),
    }
    for criterion in criteria:
        names = [*labels, *(str(criterion.get(key) or "") for key in ("stage", "metric", "op"))]
        for key, family in per_criterion.items():
            value = criterion.get(key)
            if isinstance(value, bool):
                family.add_metric(names, 1.0 if value else 0.0)
            elif _finite(value):
                family.add_metric(names, float(value))
    families.extend(family for family in per_criterion.values() if family.samples)
    registry.register(_Fixed(families))
    return registry


class _Fixed:
    """A collector of families built once (a push sends a report that no longer changes)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _words(reason: object, url: str) -> str:
    """An error's words, lower case, with anything of the URL's credentials taken out."""
    return scrub(unquoted_tokens(str(reason)), secrets_in(url)).lower()
