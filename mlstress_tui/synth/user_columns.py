"""User profile columns: design.md's mixes plus names, emails and cities sampled from a seeded Faker pool."""

from __future__ import annotations

import numpy as np
from faker import Faker

from mlstress_tui.synth.categories import draw_category, exact_mask
from mlstress_tui.synth.mixes import REFERENCE, Mix, Population

# A Faker call costs tens of microseconds, far too slow per row; a few thousand
# calls fill pools that rows sample by index (a million distinct full names).
FIRST_NAME_POOL = 1_000
LAST_NAME_POOL = 1_000
USER_NAME_POOL = 2_000
CITY_POOL = 400
DOMAIN_DRAWS = 40


class ProfilePool:
    """Faker values for one locale and seed, drawn once."""

    def __init__(self, locale: str, seed: int) -> None:
        fake = Faker(locale)
        fake.seed_instance(seed)
        self.first_names = np.array([fake.first_name() for _ in range(FIRST_NAME_POOL)], dtype=object)
        self.last_names = np.array([fake.last_name() for _ in range(LAST_NAME_POOL)], dtype=object)
        self.user_names = np.array([fake.user_name() for _ in range(USER_NAME_POOL)], dtype=object)
        self.cities = np.array([fake.city() for _ in range(CITY_POOL)], dtype=object)
        self.domains = np.array(sorted({fake.free_email_domain() for _ in range(DOMAIN_DRAWS)}), dtype=object)


def draw_profiles(
    rng: np.random.Generator, pool: ProfilePool, size: int, edge_cases: bool, population: Population = REFERENCE
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Columns segment, country, device_type, name, email, city (object arrays) and the NULLs injected per column."""
    first = pool.first_names[rng.integers(0, len(pool.first_names), size)]
    last = pool.last_names[rng.integers(0, len(pool.last_names), size)]
    user_name = pool.user_names[rng.integers(0, len(pool.user_names), size)]
    suffix = rng.integers(0, 1000, size)
    domain = pool.domains[rng.integers(0, len(pool.domains), size)]
    columns = {
        "segment": _draw(rng, population.segment, size, population.exact_shares),
        "country": _draw(rng, population.country, size, population.exact_shares),
        "device_type": _draw(rng, population.device_type, size, population.exact_shares),
        "name": np.array([f"{f} {s}" for f, s in zip(first.tolist(), last.tolist())], dtype=object),
        "email": np.array(
            [
                f"{name}{number}@{host}" if number >= 100 else f"{name}@{host}"
                for name, number, host in zip(user_name.tolist(), suffix.tolist(), domain.tolist())
            ],
            dtype=object,
        ),
        "city": pool.cities[rng.integers(0, len(pool.cities), size)],
    }
    nulls = {}
    for column, share in population.user_nulls:
        missing = exact_mask(rng, share, size) if population.exact_shares else rng.random(size) < share
        if edge_cases:
            columns[column][missing] = None
        nulls[column] = int(missing.sum()) if edge_cases else 0
    return columns, nulls


def _draw(rng: np.random.Generator, mix: Mix, size: int, exact: bool) -> np.ndarray:
    return np.array(mix.labels, dtype=object)[draw_category(rng, mix.shares, size, exact)]
