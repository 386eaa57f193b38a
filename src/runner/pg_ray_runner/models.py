"""The model kinds behind one interface: a predictor maps a batch of input rows to one value per row.

sklearn and onnx models come as bytes from the database or from a path or
URI; python models are a class found in a zip of code, a directory, or an
installed package; http models are an OpenAI-compatible endpoint
(httpmodel.py).  vllm runs as a Ray Data LLM stage instead (llm.py).  The
interface and the errors they share are in predictor.py.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .predictor import ModelError, Predictor, PredictorOutput
from .spec import Model


def read_location(uri: str) -> bytes:
    """The bytes of a model file: a local path, or a URI Arrow's filesystems read (s3://, gs://, ...)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", uri) and not uri.startswith("file://"):
        from pyarrow import fs
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    with open(uri.removeprefix("file://"), "rb") as f:
        return f.read()


def _model_bytes(model: Model, data: bytes | None) -> bytes:
    if data is not None:
        return data
    if not model.uri:
        raise ModelError(f"model {model.name} version {model.version} has neither data nor a uri")
    return read_location(model.uri)


def _positive_column(classes: Any, width: int) -> int:
    """The column of the positive class (1 or True) in predict_proba's output, else the last."""
    if classes is not None:
        for i, c in enumerate(list(classes)):
            if isinstance(c, (bool, np.bool_, int, np.integer)) and c == 1:
                return i
    return width - 1


@dataclass
class SklearnPredictor:
    estimator: Any
    inputs: list[str]
    probability: bool

    def __post_init__(self) -> None:
        names = getattr(self.estimator, "feature_names_in_", None)
        self.feature_names = None if names is None else [str(n) for n in names]
        if self.feature_names is not None:
            missing = [n for n in self.feature_names if n not in self.inputs]
            if missing:
                raise ModelError(f"the model was fitted on columns that are not inputs: {', '.join(missing)}")
        self.probability = self.probability and hasattr(self.estimator, "predict_proba")

    def __call__(self, batch: pd.DataFrame) -> np.ndarray:
        # estimators fitted on a DataFrame (pipelines, column transformers)
        # select their columns by name (not again when the batch has just those, in that order:
        # pandas' selection costs as much as the model's call on a small batch); the others take
        # a plain matrix
        wanted = self.inputs if self.feature_names is None else self.feature_names
        features: Any = batch if list(batch.columns) == wanted else batch[wanted]
        if self.feature_names is None:
            features = features.to_numpy(dtype=np.float64, na_value=np.nan)
        if self.probability:
            proba = np.asarray(self.estimator.predict_proba(features))
            return proba[:, _positive_column(getattr(self.estimator, "classes_", None), proba.shape[1])]
        return np.asarray(self.estimator.predict(features))


def load_sklearn(model: Model, data: bytes | None, inputs: list[str], probability: bool) -> SklearnPredictor:
    import joblib
    estimator = joblib.load(io.BytesIO(_model_bytes(model, data)))
    return SklearnPredictor(estimator, inputs, probability)


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_}


class OnnxPredictor:
    def __init__(self, model_bytes: bytes, inputs: list[str], probability: bool,
                 output_name: str | None = None, use_gpu: bool = False) -> None:
        import onnxruntime as ort
        providers = ["CPUExecutionProvider"]
        if use_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(model_bytes, providers=providers)
        self.inputs = inputs
        self.session_inputs = self.session.get_inputs()
        if len(self.session_inputs) > 1:
            unknown = [i.name for i in self.session_inputs if i.name not in inputs]
            if unknown:
                raise ModelError(f"the ONNX model's inputs {', '.join(unknown)} are not input columns")
        outputs = [o.name for o in self.session.get_outputs()]
        if output_name is not None:
            if output_name not in outputs:
                raise ModelError(f"the ONNX model has no output {output_name!r}; it has {', '.join(outputs)}")
            self.output = output_name
        else:
            prob = [o for o in outputs if "prob" in o.lower()] if probability else []
            self.output = (prob or outputs)[0]
        self.probability = probability and "prob" in self.output.lower()

    def _feeds(self, batch: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self.session_inputs) == 1:
            only = self.session_inputs[0]
            dtype = _ONNX_DTYPES.get(only.type, np.float32)
            return {only.name: batch[self.inputs].to_numpy(dtype=dtype)}
        return {i.name: batch[i.name].to_numpy(dtype=_ONNX_DTYPES.get(i.type, np.float32)).reshape(-1, 1)
                for i in self.session_inputs}

    def __call__(self, batch: pd.DataFrame) -> np.ndarray:
        result = self.session.run([self.output], self._feeds(batch))[0]
        if isinstance(result, list):
            # ZipMap: one {class: probability} per row
            return np.array([row[1] if 1 in row else list(row.values())[-1] for row in result])
        result = np.asarray(result)
        if result.ndim == 2 and result.shape[1] > 1 and self.probability:
            return result[:, result.shape[1] - 1]
        if result.ndim > 1 and int(np.prod(result.shape[1:])) != 1:
            raise ModelError(f"the ONNX output {self.output!r} has shape {result.shape}, "
                             "not one value per row; name another with the option output_name")
        return result.reshape(-1)


def load_onnx(model: Model, data: bytes | None, inputs: list[str], probability: bool,
              options: dict[str, Any], num_gpus: float) -> OnnxPredictor:
    return OnnxPredictor(_model_bytes(model, data), inputs, probability,
                         options.get("output_name"), use_gpu=num_gpus > 0)


_CLASS_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")


def _code_directory(model: Model, data: bytes | None, options: dict[str, Any]) -> str | None:
    """Where a python model's code lives: a zip (bytes or file) unpacked here, or a directory."""
    zipped = data
    location = options.get("path") or (model.uri if model.uri and not _CLASS_PATH.match(model.uri) else None)
    if zipped is None and location and os.path.isfile(location):
        zipped = read_location(location)
    if zipped is not None:
        directory = tempfile.mkdtemp(prefix="pg_ray_model_")
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            archive.extractall(directory)
        return directory
    if location:
        if not os.path.isdir(location):
            raise ModelError(f"python model code {location!r} is neither a directory nor a zip file on this node")
        return location
    return None


@dataclass
class PythonPredictor:
    instance: Any
    output_name: str

    def __call__(self, batch: pd.DataFrame) -> PredictorOutput:
        result = self.instance(batch)
        if isinstance(result, pd.DataFrame):
            if self.output_name in result.columns:
                return result[self.output_name]
            if len(result.columns) != 1:
                raise ModelError(f"the model returned columns {', '.join(map(str, result.columns))}, "
                                 f"none of them {self.output_name!r}")
            return result.iloc[:, 0]
        if isinstance(result, dict):
            if self.output_name not in result:
                raise ModelError(f"the model returned no {self.output_name!r}")
            return result[self.output_name]
        return result


def load_python(model: Model, data: bytes | None, options: dict[str, Any], output_name: str) -> PythonPredictor:
    class_path = options.get("class") or (model.uri if model.uri and _CLASS_PATH.match(model.uri) else None)
    if not class_path or not _CLASS_PATH.match(class_path):
        raise ModelError("a python model needs its class as module:Class (the option class, or the uri)")
    directory = _code_directory(model, data, options)
    if directory is not None and directory not in sys.path:
        sys.path.insert(0, directory)
    module_name, _, class_name = class_path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ModelError(f"cannot load python model class {class_path}: {error}") from error
    return PythonPredictor(cls(**(options.get("init_kwargs") or {})), output_name)


def make_predictor(model: Model, data: bytes | None, inputs: list[str], options: dict[str, Any], *,
                   output_mode: str = "probability", output_name: str = "prediction",
                   num_gpus: float = 0) -> Predictor:
    """The predictor of a model, loaded once per actor."""
    probability = output_mode == "probability"
    if model.kind == "sklearn":
        return load_sklearn(model, data, inputs, probability)
    if model.kind == "onnx":
        return load_onnx(model, data, inputs, probability, options, num_gpus)
    if model.kind == "python":
        return load_python(model, data, options, output_name)
    if model.kind == "http":
        from .httpmodel import HttpPredictor, HttpSettings
        return HttpPredictor(HttpSettings.from_options(options, model.uri, inputs))
    if model.kind == "vllm":
        raise ModelError("vllm models run as a Ray Data LLM stage, not as a predictor")
    raise ModelError(f"unknown model kind {model.kind!r}")
