"""The engines: what the stages run (data, models, training, pruning, quantization, search,
export, runtimes, latency, budgets, reporting). Engines import core and each other, never a
stage or a surface."""
