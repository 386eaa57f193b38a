"""pg_ray's batch inference runner: a Ray job that scores a PostgreSQL table into a staging table.

`python -m pg_ray_runner` is the job's entrypoint (see __main__.py); run() is
the pipeline it drives, usable with any Ray session and database.
"""

from .db import Database
from .models import make_predictor
from .pipeline import RunError, RunResult, Snapshot, open_snapshot, run, score
from .predictor import ModelError, Predictor, RowError
from .spec import RunSpec

__all__ = ["Database", "ModelError", "Predictor", "RowError", "RunError", "RunResult", "RunSpec",
           "Snapshot", "make_predictor", "open_snapshot", "run", "score"]
