"""The project's registries, each with the modules that fill it (imported on first use)."""

from __future__ import annotations

from edgekd.core.registry import Registry

DATASETS: Registry = Registry(
    "data set", ("edgekd.data.digits", "edgekd.data.synthetic", "edgekd.data.imagefolder")
)
LOSSES: Registry = Registry("distillation loss", ("edgekd.train.losses",))
SEARCH_SPACES: Registry = Registry("search space", ("edgekd.search_spaces.spaces",))
IMPORTANCES: Registry = Registry("pruning importance", ("edgekd.pruning.importance",))
EXPORTERS: Registry = Registry(
    "exporter",
    ("edgekd.exporters.onnx", "edgekd.exporters.openvino_ir", "edgekd.exporters.tensorrt"),
)
BACKENDS: Registry = Registry(
    "benchmark backend",
    (
        "edgekd.latency.backends.torch_backend",
        "edgekd.latency.backends.onnxruntime_backend",
        "edgekd.latency.backends.openvino_backend",
        "edgekd.latency.backends.tensorrt_backend",
    ),
)
