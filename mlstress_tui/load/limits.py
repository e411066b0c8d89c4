"""The bounds every control shares (a key, the ramp, a script), importable without the engine."""

# The most any control may ask for: past it, threads and memory, not the target, give out.
MAX_CONCURRENCY = 1024
MAX_RATE = 1_000_000.0
# Executors (and pool slots) of the open loop when --pool-size is not given, as k6's pre-allocated VUs.
DEFAULT_OPEN_POOL = 64
