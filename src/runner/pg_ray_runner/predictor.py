"""What every model kind shares: the predictor interface, its output, and the errors of models.

models.py loads the model kinds behind this interface, httpmodel.py is the
http kind and llm.py the vllm stage; the pipeline calls predictors and
turns their errors into the run's.  This module imports none of them, so
that they import it without a cycle.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

PredictorOutput = pa.Array | pa.ChunkedArray | np.ndarray | pd.Series | Sequence[Any]


class Predictor(Protocol):
    def __call__(self, batch: pd.DataFrame) -> PredictorOutput: ...


class ModelError(RuntimeError):
    """A model that cannot be loaded or called as its spec says."""


class RowError(RuntimeError):
    """A prediction failed for one row of the batch (its position in it)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA: what becomes NULL."""
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and value != value)
