"""The reference feature service (Starlette): /features/{user_id}, /predict/{user_id}, /healthz.

Everything a production feature service does on its path is here and measured:
a database connection pool (`--pool-size`), the feature query, a small numpy
model, JSON serialization. Endpoints are plain functions, so Starlette runs them
in its thread pool and a request waiting for a database connection waits like
it would in production. Settings come from the environment (MLSTRESS_SERVE_*)
so that each of uvicorn's `--workers` processes builds the same app.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mlstress_tui.pipeline.feature_query import MissingUser
from mlstress_tui.serve.feature_store import PoolExhausted, PostgresStore, SQLiteStore

# The model: a fixed logistic regression over the numeric features (seeded weights, no training data needed).
NUMERIC = ("account_age_days", "total_events", "purchases", "total_spend", "mean_session_duration_s",
           "events_last_30d", "days_since_last_event")
_WEIGHTS = np.random.default_rng(20260301).normal(0.0, 0.01, len(NUMERIC))


def score(features: dict) -> float:
    """The model's score for one feature vector; missing values count as 0 (a user without events)."""
    vector = np.array([float(features.get(name) or 0.0) for name in NUMERIC])
    return float(1.0 / (1.0 + math.exp(-float(np.clip(vector @ _WEIGHTS, -50, 50)))))


def create_app() -> Starlette:
    """The app, configured from MLSTRESS_SERVE_DB or MLSTRESS_SERVE_DSN, _POOL_SIZE, _FAIL_RATE, _EXTRA_LATENCY_MS."""
    pool_size = int(os.environ.get("MLSTRESS_SERVE_POOL_SIZE", "4"))
    wait_s = float(os.environ.get("MLSTRESS_SERVE_POOL_TIMEOUT_S", "30"))
    if os.environ.get("MLSTRESS_SERVE_DSN"):
        store = PostgresStore(os.environ["MLSTRESS_SERVE_DSN"], pool_size, wait_s)
    else:
        store = SQLiteStore(Path(os.environ["MLSTRESS_SERVE_DB"]), pool_size, wait_s)
    fail_rate = float(os.environ.get("MLSTRESS_SERVE_FAIL_RATE", "0"))
    extra_s = float(os.environ.get("MLSTRESS_SERVE_EXTRA_LATENCY_MS", "0")) / 1000

    def features_of(user_id: str) -> dict | JSONResponse:
        if fail_rate and random.random() < fail_rate:
            return JSONResponse({"error": "injected failure"}, status_code=503)
        try:
            # Injected latency is spent holding the database connection, as a slow query would.
            return store.features(user_id, hold_s=extra_s)
        except MissingUser:
            return JSONResponse({"error": f"no user {user_id}"}, status_code=404)
        except PoolExhausted:
            return JSONResponse({"error": "no database connection came free"}, status_code=503)

    def features(request: Request) -> JSONResponse:
        found = features_of(request.path_params["user_id"])
        return found if isinstance(found, JSONResponse) else JSONResponse(found)

    def predict(request: Request) -> JSONResponse:
        found = features_of(request.path_params["user_id"])
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse({"user_id": found["user_id"], "score": score(found)})

    def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        store.close()

    routes = [Route("/features/{user_id}", features), Route("/predict/{user_id}", predict), Route("/healthz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)
