"""Exporters (registry): onnx (FP32 / INT8 Q/DQ), openvino (IR), tensorrt (engine or command)."""
