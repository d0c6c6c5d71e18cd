"""Baselines for `bench/serve.py`: what Python HTTP and a hand-written model endpoint can do.

Two Starlette apps, run by uvicorn (uvloop + httptools) from `bench/serve.py`:

- ``hello``: reads the request body and answers a constant JSON object. Nothing
  does less per request, so it is the ceiling of Python HTTP on the machine.
- ``model``: what a user who skipped atoll would write around the same trained
  demo model, calling the LightGBM booster the package holds directly, in the
  event loop, with one OpenMP thread. Two routes:
  ``/predict`` takes the same ``{"instances": [row]}`` body as atoll, builds a
  one-row pandas DataFrame and turns it into the encoded feature matrix with
  the model's own schema check and wrangler (a hand-written endpoint has to do
  this work too); ``/predict-encoded`` takes the already-encoded feature vector
  (``{"inputs": [[...]]}``: no validation, no wrangling), as the peers' bare
  endpoint in research/anchors/serving did, so it is the harder baseline.

The benchmark runs these apps with atoll's ``HardenedHttpProtocol`` (Nagle's
algorithm off on every connection): with ``--workers 2`` uvicorn leaves it on
(uvicorn #3149) and every keep-alive request would wait ~40 ms for a delayed
ACK, which would make the baseline look worse than a careful user's endpoint.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PROJECT_ENV = "ATOLL_BENCH_PROJECT"
"""The demo project directory whose `credit-risk@production` the model app serves."""


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def _hello(request: Request) -> Response:
    await request.body()
    return _json({"hello": "world"})


async def _ready(request: Request) -> Response:
    return _json({"ready": True})


hello = Starlette(routes=[Route("/hello", _hello, methods=["POST"]), Route("/readyz", _ready)])


def _model_app() -> Starlette:
    """Load the demo model once per worker; its booster scores in the event loop."""
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    import atoll
    from atoll.api import project_settings

    threadpool_limits(1)
    predictor = atoll.load(
        "credit-risk@production", settings=project_settings(Path(os.environ[PROJECT_ENV]))
    )
    booster = predictor.scorer.predict.__self__  # type: ignore[attr-defined]
    schema, wrangler = predictor.schema, predictor.wrangler
    classes = list(predictor.classes)
    keys = [str(c) for c in classes]

    def answer(positive: Any) -> Response:
        out = [
            {"prediction": classes[int(p > 0.5)], "probabilities": {keys[0]: 1.0 - p, keys[1]: p}}
            for p in positive.tolist()
        ]
        return _json({"predictions": out})

    async def predict(request: Request) -> Response:
        rows = orjson.loads(await request.body())["instances"]
        frame = pd.DataFrame(rows)
        return answer(booster.predict(wrangler.matrix(schema.check(frame, "predict"))))

    async def predict_encoded(request: Request) -> Response:
        matrix = np.asarray(orjson.loads(await request.body())["inputs"], dtype=np.float64)
        return answer(booster.predict(matrix))

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/predict-encoded", predict_encoded, methods=["POST"]),
        Route("/readyz", _ready),
    ]
    return Starlette(routes=routes)


def __getattr__(name: str) -> Any:
    # The model app is built only when uvicorn asks for it, so `hello` never loads atoll.
    if name == "model":
        app = _model_app()
        globals()["model"] = app
        return app
    raise AttributeError(name)
