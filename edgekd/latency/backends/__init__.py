"""Benchmark backends (registry): torch, onnxruntime, openvino, tensorrt."""
