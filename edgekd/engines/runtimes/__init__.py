"""Runtimes: load a model file and run it (ONNX Runtime, OpenVINO, TensorRT, torch), below exporters and latency."""
