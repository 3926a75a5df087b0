"""The one distillation trainer (distill, prune fine-tune, QAT) and its loss registry."""
