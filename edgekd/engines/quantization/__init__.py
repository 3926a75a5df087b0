"""INT8 quantization with NNCF (calibration, QAT wrapping, plain-data config)."""
