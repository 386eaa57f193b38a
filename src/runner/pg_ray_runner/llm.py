"""The vllm model kind: a Ray Data LLM stage on the cluster's GPU workers.

Only run where vllm is installed; everywhere else it fails at once with a
clear message rather than after the read.
"""

from __future__ import annotations

from typing import Any

import ray

from .predictor import ModelError
from .spec import RunSpec

NEEDS_VLLM = "model kind vllm needs vllm installed on the cluster and a GPU worker group"


def vllm_stage(ds: ray.data.Dataset, spec: RunSpec) -> ray.data.Dataset:
    try:
        import vllm  # noqa: F401
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    except ImportError as error:
        raise ModelError(NEEDS_VLLM) from error
    options = spec.model_options()
    model_source = options.get("model") or spec.model.uri
    if not model_source:
        raise ModelError("a vllm model needs its model id or path as uri")
    prompt = str(options.get("prompt") or "{" + spec.inputs[0] + "}")
    system = options.get("system")
    sampling = {"temperature": float(options.get("temperature", 0.0))}
    if options.get("max_tokens") is not None:
        sampling["max_tokens"] = int(options["max_tokens"])
    concurrency = spec.options.get("concurrency", 1)
    config = vLLMEngineProcessorConfig(
        model_source=model_source,
        engine_kwargs=dict(options.get("engine_kwargs") or {}),
        batch_size=int(spec.options.get("batch_size", 64)),
        concurrency=tuple(concurrency) if isinstance(concurrency, list) else int(concurrency),
    )
    key, output = spec.key, spec.output.name

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt.format_map(row)}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return {**{k: row[k] for k in key}, "messages": messages, "sampling_params": sampling}

    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        return {**{k: row[k] for k in key}, output: row["generated_text"]}

    return build_processor(config, preprocess=preprocess, postprocess=postprocess)(ds)
