"""The sklearn, onnx and python model kinds, called as the runner calls them, without Ray."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pg_ray_runner.models import make_predictor
from pg_ray_runner.predictor import ModelError
from pg_ray_runner.spec import Model

INPUTS = ["age", "price"]


def training_data(rows: int = 400, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.integers(18, 80, rows).astype(np.int64),
                          "price": rng.normal(50, 20, rows)})
    labels = ((frame["age"] > 45) ^ (rng.random(rows) < 0.1)).astype(int).to_numpy()
    return frame, labels


def dumped(estimator: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def model(kind: str, **fields: object) -> Model:
    return Model(name="m", version=1, kind=kind, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def logistic() -> tuple[LogisticRegression, pd.DataFrame]:
    frame, labels = training_data()
    return LogisticRegression().fit(frame.to_numpy(), labels), frame


def test_sklearn_probability_of_the_positive_class(logistic: tuple[LogisticRegression, pd.DataFrame]) -> None:
    clf, frame = logistic
    predict = make_predictor(model("sklearn", has_data=True), dumped(clf), INPUTS, {})
    got = np.asarray(predict(frame))
    assert got.shape == (len(frame),)
    np.testing.assert_allclose(got, clf.predict_proba(frame.to_numpy())[:, 1], rtol=0, atol=1e-15)
    assert 0.05 < got.mean() < 0.95, "a constant model would prove nothing"


def test_sklearn_positive_class_is_found_by_its_label() -> None:
    frame, labels = training_data()
    # classes_ is [1, 2]: the positive class 1 is the first column, not the last
    clf = LogisticRegression().fit(frame.to_numpy(), labels + 1)
    predict = make_predictor(model("sklearn"), dumped(clf), INPUTS, {})
    np.testing.assert_allclose(predict(frame), clf.predict_proba(frame.to_numpy())[:, 0])


def test_sklearn_label_output(logistic: tuple[LogisticRegression, pd.DataFrame]) -> None:
    clf, frame = logistic
    predict = make_predictor(model("sklearn"), dumped(clf), INPUTS, {}, output_mode="label")
    np.testing.assert_array_equal(predict(frame), clf.predict(frame.to_numpy()))


def test_sklearn_regressor_without_predict_proba(tmp_path: Path) -> None:
    frame, _ = training_data()
    target = frame["age"] * 2.0 + frame["price"]
    reg = LinearRegression().fit(frame.to_numpy(), target)
    path = tmp_path / "reg.joblib"
    joblib.dump(reg, path)
    # a model named by its path, asked for a probability it cannot give
    predict = make_predictor(model("sklearn", uri=str(path)), None, INPUTS, {})
    np.testing.assert_allclose(predict(frame), target, rtol=1e-9)


def test_sklearn_pipeline_gets_named_columns() -> None:
    frame, labels = training_data()
    frame["country"] = np.where(frame["age"] % 3 == 0, "fr", np.where(frame["age"] % 3 == 1, "de", "us"))
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([("num", StandardScaler(), ["age", "price"]),
                                       ("cat", OneHotEncoder(), ["country"])])),
        ("clf", LogisticRegression()),
    ]).fit(frame, labels)
    assert list(pipeline.feature_names_in_) == ["age", "price", "country"]
    # inputs in another order than the pipeline was fitted with: it must still get them by name
    batch = frame[["country", "price", "age"]]
    predict = make_predictor(model("sklearn"), dumped(pipeline), ["country", "price", "age"], {})
    np.testing.assert_allclose(predict(batch), pipeline.predict_proba(frame)[:, 1], atol=1e-15)


def test_sklearn_pipeline_missing_column_is_a_clear_error() -> None:
    frame, labels = training_data()
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(frame, labels)
    with pytest.raises(ModelError, match="not inputs: price"):
        make_predictor(model("sklearn"), dumped(pipeline), ["age"], {})


def onnx_bytes(clf: LogisticRegression, zipmap: bool) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    options = None if zipmap else {id(clf): {"zipmap": False}}
    onnx_model = convert_sklearn(clf, initial_types=[("features", FloatTensorType([None, 2]))],
                                 options=options)
    return onnx_model.SerializeToString()


@pytest.mark.parametrize("zipmap", [False, True])
def test_onnx_probability_close_to_sklearn(logistic: tuple[LogisticRegression, pd.DataFrame],
                                           zipmap: bool) -> None:
    clf, frame = logistic
    predict = make_predictor(model("onnx"), onnx_bytes(clf, zipmap), INPUTS, {})
    got = np.asarray(predict(frame), dtype=np.float64)
    assert got.shape == (len(frame),)
    np.testing.assert_allclose(got, clf.predict_proba(frame.to_numpy())[:, 1], atol=1e-5)


def test_onnx_label_and_named_output(logistic: tuple[LogisticRegression, pd.DataFrame], tmp_path: Path) -> None:
    clf, frame = logistic
    path = tmp_path / "clf.onnx"
    path.write_bytes(onnx_bytes(clf, zipmap=False))
    labels = make_predictor(model("onnx", uri=str(path)), None, INPUTS, {}, output_mode="label")
    np.testing.assert_array_equal(labels(frame), clf.predict(frame.to_numpy()))
    named = make_predictor(model("onnx", uri=str(path)), None, INPUTS, {"output_name": "label"})
    np.testing.assert_array_equal(named(frame), clf.predict(frame.to_numpy()))
    with pytest.raises(ModelError, match="no output 'nope'"):
        make_predictor(model("onnx", uri=str(path)), None, INPUTS, {"output_name": "nope"})


def test_onnx_with_one_input_per_column() -> None:
    import onnx
    from onnx import TensorProto, helper
    # price * 2 + age, with age an int64 input and price a double one
    graph = helper.make_graph(
        [helper.make_node("Cast", ["age"], ["age_d"], to=TensorProto.DOUBLE),
         helper.make_node("Mul", ["price", "two"], ["double_price"]),
         helper.make_node("Add", ["double_price", "age_d"], ["score"])],
        "sum",
        [helper.make_tensor_value_info("age", TensorProto.INT64, [None, 1]),
         helper.make_tensor_value_info("price", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor_value_info("score", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor("two", TensorProto.DOUBLE, [], [2.0])])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    frame, _ = training_data(20)
    predict = make_predictor(model("onnx"), onnx_model.SerializeToString(), ["price", "age"], {})
    np.testing.assert_allclose(predict(frame), frame["price"] * 2 + frame["age"])


MODULE = textwrap.dedent("""
    import pandas as pd

    class Doubler:
        def __init__(self, factor: float = 2.0):
            self.factor = factor

        def __call__(self, batch: pd.DataFrame):
            return (batch["age"] * self.factor + batch["price"]).to_numpy()

    class Framed:
        def __call__(self, batch):
            return pd.DataFrame({"other": [0] * len(batch), "score": batch["age"] + 1})
""")


def test_python_model_from_zip_bytes(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_scoring/__init__.py", "")
        z.writestr("zipped_scoring/model.py", MODULE)
    frame, _ = training_data(10)
    predict = make_predictor(model("python"), archive.getvalue(), INPUTS,
                             {"class": "zipped_scoring.model:Doubler", "init_kwargs": {"factor": 3}})
    np.testing.assert_allclose(predict(frame), frame["age"] * 3 + frame["price"])


def test_python_model_from_a_directory(tmp_path: Path) -> None:
    package = tmp_path / "dir_scoring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(MODULE)
    frame, _ = training_data(10)
    # the brief's style: the directory as uri, the class in the options
    by_uri = make_predictor(model("python", uri=str(tmp_path)), None, INPUTS,
                            {"class": "dir_scoring.model:Doubler"})
    np.testing.assert_allclose(by_uri(frame), frame["age"] * 2 + frame["price"])
    # the catalog's style: the class as uri, the code's directory in the options
    framed = make_predictor(model("python", uri="dir_scoring.model:Framed"), None, INPUTS,
                            {"path": str(tmp_path)}, output_name="score")
    np.testing.assert_array_equal(np.asarray(framed(frame)), frame["age"] + 1)


def test_python_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="module:Class"):
        make_predictor(model("python", uri=str(tmp_path)), None, INPUTS, {})
    with pytest.raises(ModelError, match="cannot load python model class no_such_module:X"):
        make_predictor(model("python", uri=str(tmp_path)), None, INPUTS, {"class": "no_such_module:X"})
    with pytest.raises(ModelError, match="neither a directory nor a zip"):
        make_predictor(model("python", uri="m:C"), None, INPUTS, {"path": str(tmp_path / "missing")})


def test_unknown_and_vllm_kinds() -> None:
    with pytest.raises(ModelError, match="unknown model kind 'tensorflow'"):
        make_predictor(model("tensorflow"), b"x", INPUTS, {})
    with pytest.raises(ModelError, match="vllm"):
        make_predictor(model("vllm", uri="some/model"), None, INPUTS, {})


def test_outputs_become_the_output_column_type() -> None:
    import pyarrow as pa

    from pg_ray_runner.pipeline import to_arrow
    assert to_arrow(np.array([[0.25], [1.0]]), pa.float64(), 2).to_pylist() == [0.25, 1.0]
    assert to_arrow(pd.Series([1, 0, 1]), pa.bool_(), 3).to_pylist() == [True, False, True]
    assert to_arrow([3.0, None], pa.int64(), 2).to_pylist() == [3, None]
    texts = to_arrow(pd.Series(["a", None, float("nan")], dtype=object), pa.string(), 3)
    assert texts.to_pylist() == ["a", None, None], "missing values are NULL, not 'nan'"
    assert to_arrow([{"k": [1, 2]}, 7, np.float64(0.5)], pa.string(), 3).to_pylist() == \
        ['{"k": [1, 2]}', "7", "0.5"]
    with pytest.raises(ModelError, match="returned 1 values for 2 rows"):
        to_arrow([1.0], pa.float64(), 2)
    with pytest.raises(ModelError, match="does not fit the output column"):
        to_arrow([1.5], pa.int64(), 1)
    with pytest.raises(ModelError, match=r"shape \(2, 2\)"):
        to_arrow(np.ones((2, 2)), pa.float64(), 2)


def test_scorer_carries_keys_and_handles_empty_batches(logistic: tuple[LogisticRegression, pd.DataFrame]) -> None:
    import pyarrow as pa

    from pg_ray_runner.pipeline import Scorer
    clf, frame = logistic
    schema = pa.schema([("id", pa.string()), ("p", pa.float64())])
    scorer = Scorer(model("sklearn"), dumped(clf), INPUTS, ["id"], schema, {}, "probability")
    batch = pa.table({"id": [f"k{i}" for i in range(len(frame))], "age": frame["age"], "price": frame["price"]})
    out = scorer(batch)
    assert out.schema == schema and out.column("id").equals(batch.column("id"))
    np.testing.assert_allclose(out.column("p").to_numpy(), clf.predict_proba(frame.to_numpy())[:, 1])
    empty = scorer(batch.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == schema


def test_vllm_without_vllm_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from pg_ray_runner.llm import NEEDS_VLLM, vllm_stage
    from pg_ray_runner.spec import Column, Output, RunSpec, Source
    monkeypatch.setitem(sys.modules, "vllm", None)  # as on a cluster without it
    spec = RunSpec(job_id=1, attempt=1, source=Source(table="t"),
                   columns=[Column("id", "bigint"), Column("q", "text")], key=["id"], inputs=["q"],
                   output=Output("a", "text"), staging_table="s", staging_columns=["id", "a"],
                   model=model("vllm", uri="org/some-model"))
    with pytest.raises(ModelError) as raised:
        vllm_stage(None, spec)  # type: ignore[arg-type]
    assert str(raised.value) == NEEDS_VLLM
    assert NEEDS_VLLM == "model kind vllm needs vllm installed on the cluster and a GPU worker group"


def test_missing_inputs_get_pg_rays_words_or_are_scored_as_null(
        logistic: tuple[LogisticRegression, pd.DataFrame]) -> None:
    import pyarrow as pa

    from pg_ray_runner.pipeline import RunError, Scorer
    clf, frame = logistic
    schema = pa.schema([("id", pa.int64()), ("p", pa.float64())])
    rows = 6
    batch = pa.table({"id": list(range(1, rows + 1)),
                      "age": pa.array([30, None, 50, 60, None, 40], pa.int64()),
                      "price": [1.0, 2.0, float("nan"), float("inf"), 5.0, 6.0]})
    # LogisticRegression refuses NaN: the run fails in pg_ray's words, naming the columns and counts
    with pytest.raises(ModelError) as raised:
        Scorer(model("sklearn"), dumped(clf), INPUTS, ["id"], schema, {}, "probability")(batch)
    message = str(raised.value)
    assert message.startswith('input columns NULL, NaN or infinite ("age" in 2, "price" in 2 of the 6 rows of a '
                              "batch; first: row with id=2) failed the model; score such rows as NULL with "
                              """options => '{"missing_inputs": "null"}', or replace the values in a query source. """
                              "The model said: ValueError: ")
    assert "\n" not in message
    # or they are scored as NULL, and the model never sees them
    out = Scorer(model("sklearn"), dumped(clf), INPUTS, ["id"], schema, {}, "probability", missing="null")(batch)
    assert out.column("id").to_pylist() == list(range(1, rows + 1))
    scored = out.column("p").to_pylist()
    assert [v is None for v in scored] == [False, True, True, True, True, False]
    np.testing.assert_allclose([scored[0], scored[5]], clf.predict_proba(np.array([[30, 1.0], [40, 6.0]]))[:, 1])
    every_row_missing = batch.filter(pa.array([False, True, True, True, True, False]))
    assert Scorer(model("sklearn"), dumped(clf), INPUTS, ["id"], schema, {}, "probability",
                  missing="null")(every_row_missing).column("p").null_count == 4
    with pytest.raises(RunError, match="missing_inputs must be one of model, null"):
        Scorer(model("sklearn"), dumped(clf), INPUTS, ["id"], schema, {}, "probability", missing="skip")


def test_a_model_that_takes_nan_gets_it(logistic: tuple[LogisticRegression, pd.DataFrame]) -> None:
    import pyarrow as pa
    from sklearn.ensemble import HistGradientBoostingClassifier

    from pg_ray_runner.pipeline import Scorer
    _, frame = logistic
    labels = (frame["age"] > 45).astype(int).to_numpy()
    clf = HistGradientBoostingClassifier(max_iter=5).fit(frame.to_numpy(dtype=np.float64), labels)
    schema = pa.schema([("id", pa.int64()), ("p", pa.float64())])
    batch = pa.table({"id": [1, 2], "age": pa.array([None, 70], pa.int64()), "price": [float("nan"), 3.0]})
    out = Scorer(model("sklearn"), dumped(clf), INPUTS, ["id"], schema, {}, "probability")(batch)
    assert out.column("p").null_count == 0
