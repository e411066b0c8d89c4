"""Decisions from measurements: the knee and USL fit of a ramp (and, later, heavy-user strata and acceptance criteria)."""
