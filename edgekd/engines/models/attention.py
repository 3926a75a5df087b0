"""What torch-pruning must be told about a transformer, and the attributes to mend after it cuts.

torch-pruning slices tensors; it does not know that timm's attention reshapes ``qkv`` by
``num_heads`` and ``head_dim``, nor which dimension of a bare ``nn.Parameter`` (a class token,
a position embedding, a LayerScale) is the channel one. Both are stated here, once, for the
pruner and for the replay that rebuilds a pruned model from its history:

* **attention**: a timm-style block (``qkv`` linear + ``num_heads``) is declared with its head
  count, so the pruner cuts every head's dimension alike (``prune_head_dims``); the head count
  stays. Whole-head removal is not used: with the 2–4 heads of an edge-sized transformer one
  head is a third to a half of the attention, far coarser than the micro-steps the latency
  target is searched with, and torch-pruning's head schedule removed every head of a 3-head
  ViT in two of those steps. After a cut, ``head_dim`` and ``attn_dim`` are read back from
  ``qkv``'s new width.
* **bare parameters**: tokens and position embeddings (``[1, N, C]``: the last dimension) and
  per-channel scales (``gamma`` ``[C]``) are declared with their channel dimension; per-head
  tables (Swin's relative position bias) are declared and left whole. Anything
  else torch-pruning would guess at; the pruner refuses to guess (engines/pruning/structured.py).
"""

from __future__ import annotations

from torch import nn

TOKEN_PARAMETERS = ("cls_token", "dist_token", "reg_token", "pos_embed")
SCALE_PARAMETERS = ("gamma",)  # timm's LayerScale and ConvNeXt blocks: one factor per channel
# per-head tables (Swin's relative position bias, [positions, heads]): the head count never changes
# (head dimensions are cut, not heads), so they are declared to the pruner and left whole
FIXED_PARAMETERS = ("relative_position_bias_table",)


def attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    """timm-style attention blocks (``qkv`` + ``num_heads``): their qkv layer and head count."""
    return {m.qkv: int(m.num_heads) for m in model.modules()
            if isinstance(getattr(m, "qkv", None), nn.Linear) and isinstance(getattr(m, "num_heads", None), int)}


def channel_parameters(model: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """Bare parameters whose channel dimension is known, as torch-pruning's ``unwrapped_parameters``."""
    out: list[tuple[nn.Parameter, int]] = []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in TOKEN_PARAMETERS and p.ndim == 3:
            out.append((p, 2))
        elif leaf in SCALE_PARAMETERS and p.ndim == 1:
            out.append((p, 0))
        elif leaf in FIXED_PARAMETERS:
            out.append((p, p.ndim - 1))
    return out


def fixed_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters the pruner must leave whole (torch-pruning takes them in ``ignored_layers``)."""
    return [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in FIXED_PARAMETERS]


def known_parameter_names(model: nn.Module) -> set[str]:
    ids = {id(p) for p, _ in channel_parameters(model)}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def mend_attention(model: nn.Module) -> None:
    """Read each attention block's head width back from its (pruned) ``qkv``."""
    for m in model.modules():
        qkv, heads = getattr(m, "qkv", None), getattr(m, "num_heads", None)
        if isinstance(qkv, nn.Linear) and isinstance(heads, int) and heads > 0:
            head_dim = qkv.out_features // (3 * heads)
            if hasattr(m, "head_dim"):
                m.head_dim = head_dim
            if hasattr(m, "attn_dim"):
                m.attn_dim = head_dim * heads


INNER_LAYERS = ("qkv", "fc1")  # the widths inside a block: attention heads' dimension, MLP hidden width


def outer_layers(model: nn.Module) -> list[nn.Module]:
    """Every weight layer but the blocks' inner ones: ignoring them keeps the residual stream whole.

    For transformers whose token reshapes torch-pruning cannot map channels through (Swin's patch
    merging folds 2×2 tokens into 4·C channels): only head dimensions and MLP hidden widths are cut.
    """
    return [m for n, m in model.named_modules()
            if isinstance(m, nn.Linear | nn.Conv2d) and n.rsplit(".", 1)[-1] not in INNER_LAYERS]
