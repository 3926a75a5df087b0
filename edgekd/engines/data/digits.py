"""scikit-learn's bundled 8×8 handwritten digits: the embedded default, no download."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from edgekd.core.config import DataConfig
from edgekd.core.registries import DATASETS
from edgekd.engines.data.bundle import DataBundle, resize_uint8, stratified_split
from edgekd.engines.data.preprocess import Preprocess


class DigitsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    split_seed: int = 0


@DATASETS.register("digits", params=DigitsParams, help="scikit-learn's bundled 8x8 digits (1,797 images)")
def load_digits_bundle(cfg: DataConfig, params: DigitsParams, prep: Preprocess) -> DataBundle:
    from sklearn.datasets import load_digits

    d = load_digits()  # ships inside scikit-learn: no network
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N,1,8,8] in [0,1]
    x = resize_uint8(x, prep.size).expand(-1, 3, -1, -1).contiguous()  # drawn at the input size: no crop
    y = torch.tensor(d.target, dtype=torch.long)
    tr, va = stratified_split(y, cfg.val_fraction, params.split_seed)
    return DataBundle(
        "digits", x[tr], y[tr], x[va], y[va], [str(i) for i in range(10)], prep,
        {"split_seed": params.split_seed, "size": prep.size, "vf": cfg.val_fraction},
    )
