"""The dashboard's keys, in one table: the app binds them, the overlays pass them on, help and the palette list them.

An overlay (help, the acceptance panel, the log, the nodes) takes every key
the dashboard takes: `s` and `t` act on what is on screen, the others close
the overlay and act on the dashboard, so no key is swallowed silently.
"""

from __future__ import annotations

from textual.binding import Binding

# Keys that act where they are pressed, overlay or not: a screenshot of what is on screen, the next theme.
IN_PLACE = frozenset({"save_svg", "next_theme"})
# The four level keys share one footer label ("+-][ load"): the footer then holds every key at 80 columns.
LEVEL_KEYS = Binding.Group("load", compact=True)

DASHBOARD_KEYS: list[Binding] = [
    # Quit and help first: a narrow terminal's footer cuts from the right, and these must stay visible.
    Binding("q", "quit", "Quit", id="quit", tooltip="Stop the run, write summary.json and quit"),
    Binding("question_mark", "help", "Help", key_display="?", id="help",
            tooltip="Every key, what it does and whether it applies now"),
    Binding("plus,equals_sign", "more", "More", key_display="+", id="load-more", group=LEVEL_KEYS,
            tooltip="Concurrency +1 (closed loop) or rate +10% (open loop)"),
    Binding("minus", "fewer", "Fewer", key_display="-", id="load-fewer", group=LEVEL_KEYS,
            tooltip="Concurrency -1 (closed loop) or rate -10% (open loop)"),
    Binding("right_square_bracket", "double", "×2", key_display="]", id="load-double", group=LEVEL_KEYS,
            tooltip="Double the concurrency or rate"),
    Binding("left_square_bracket", "halve", "÷2", key_display="[", id="load-halve", group=LEVEL_KEYS,
            tooltip="Halve the concurrency or rate"),
    Binding("m", "toggle_mode", "Mode", id="toggle-mode",
            tooltip="Closed loop / open loop (starts at 80% of the median throughput measured at this level)"),
    Binding("r", "toggle_ramp", "Ramp", id="toggle-ramp",
            tooltip="Start or stop the automatic ramp (from an overloaded level it steps down until the SLA holds)"),
    Binding("p", "toggle_pause", "Pause", id="toggle-pause", tooltip="Pause or resume the load"),
    Binding("a", "acceptance", "Accept", id="acceptance", tooltip="The acceptance panel of the whole run"),
    Binding("o", "heavy_users", "Heavy", id="heavy-users",
            tooltip="Heavy users: latency by stratum of event count and the breach line on the scatter"),
    Binding("l", "run_log", "Log", id="run-log",
            tooltip="The run's events in full (faults, ramp steps, load changes) and what the target printed"),
    Binding("s", "save_svg", "Shot", id="save-svg", tooltip="Save an SVG screenshot of the screen into the run directory"),
    Binding("t", "next_theme", "Theme", id="next-theme", tooltip="Next theme from themes/"),
    # Not in the footer: it has a use only in a --ray run; help says so, and pressing it says so too.
    Binding("n", "nodes", "Nodes", id="nodes", show=False,
            tooltip="Per node of a --ray run: actors, offered and achieved load, p99, harness verdict, liveness"),
    Binding("ctrl+c", "interrupt", "Stop", show=False, priority=True, id="interrupt"),
]


def overlay_keys(own_keys: frozenset[str]) -> list[Binding]:
    """The dashboard's keys as an overlay binds them: in place, or closing the overlay first; `own_keys` are its own."""
    bindings = []
    for binding in DASHBOARD_KEYS:
        if binding.priority:
            continue  # ctrl+c reaches the app from anywhere already
        keys = ",".join(key for key in binding.key.split(",") if key not in own_keys)
        if not keys:
            continue
        action = f"app.{binding.action}" if binding.action in IN_PLACE else f"close_and('{binding.action}')"
        bindings.append(Binding(keys, action, binding.description, show=False))
    return bindings
