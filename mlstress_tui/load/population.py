"""The users a run asks for: where they come from, their event counts, their strata and edge classes, read once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlstress_tui.errors import UsageError
from mlstress_tui.load.spec import LoadSpec
from mlstress_tui.load.targets import Target
from mlstress_tui.load.user_strata import Stratum, build_strata
from mlstress_tui.load.users import UserSampler, UserSource


@dataclass(frozen=True)
class Population:
    """The user source every worker samples from, and what the heavy-user analysis weighs requests by."""

    source: UserSource
    event_counts: np.ndarray
    strata: tuple[Stratum, ...]
    edge_class_sizes: dict[str, int]

    @classmethod
    def read(cls, target: Target, spec: LoadSpec, users_db: Path | None) -> Population:
        """Read once here too (it checks the user source before any worker starts)."""
        where = target.users()
        source = UserSource(db_path=where.db_path or (users_db if not where.dsn else None), dsn=where.dsn,
                            mix=spec.user_mix, seed=spec.seed)
        sampler = UserSampler.from_source(source)
        counts = sampler.population_counts
        strata = tuple(build_strata(counts)) if counts.any() else ()
        if spec.user_mix == "stratified" and not strata:
            raise UsageError("the stratified user mix needs users with events: point --db or --users-db at a "
                             "database made by 'generate'")
        return cls(source, counts, strata, sampler.edge_class_sizes)

    def requests_limit(self, spec: LoadSpec) -> int | None:
        """--requests, or per group × groups for the stratified and edge mixes (every group the same share)."""
        if spec.requests:
            return spec.requests
        if not spec.requests_per_group:
            return None
        groups = len(self.strata) if spec.user_mix == "stratified" else sum(map(bool, self.edge_class_sizes.values()))
        return spec.requests_per_group * groups
