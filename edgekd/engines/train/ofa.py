"""OFA-KD: distillation between architectures of different families (Hao et al., NeurIPS 2023).

A ViT's blocks and a CNN's stages hold features of different shapes and meanings, so
matching them directly (FitNets, attention maps) fails across families. OFA-KD instead
gives each of several student stages a small *branch* that projects its features into
the one space both networks share: the teacher's logits. Every branch, and the final
logits, learn the teacher's predictions with a loss that enhances the target class:

    L = -(1 + p_t,c)^ε · log p_s,c  -  Σ_{k≠c} p_t,k · log p_s,k        (c: the label)

For ε = 1 this is Hinton KD (soft cross-entropy) plus cross-entropy on the label; a larger ε
raises the label's weight, the more the more confident the teacher is in it (the paper's
"adaptive target enhancement", meant for teachers whose other-class probabilities carry
architecture-specific noise the student should not copy). This is the paper's equation; the authors' code writes the target
weight as (1 + p_t,c)^ε − 1 and raises the non-target probabilities to ε too (at ε = 1:
plain KD, the label coming only from the separate CE term).

Defaults follow the authors' CIFAR-100 setting: ε 1.0 (their ImageNet runs use 1.5),
temperature 1, every weight 1, branches at the last four stages. The projectors are trained with the student (the
trainer adds them to its optimizer) and thrown away after: they are not part of the student,
so nothing saved or exported holds them. Which modules are stages: see
``engines/models/features.py`` ``stage_layers``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from edgekd.core.registries import LOSSES
from edgekd.engines.train.losses import LossInputs, LossTermModule

EPS_RANGE = (1.0, 3.0)


class OFAParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    eps: float = Field(1.0, description="target-class enhancement exponent ε (1.0: the authors' CIFAR-100 "
                                        "setting, 1.5: their ImageNet one); 1: KD plus the label, no enhancement")
    temperature: float = Field(1.0, gt=0, description="softens teacher and branch predictions alike (paper: 1)")
    stages: int = Field(4, ge=1, le=8, description="branches at the student's last N stages (paper: 4)")
    branch_weight: float = Field(1.0, ge=0, description="weight of the summed stage-branch losses (0: "
                                                     "no branches, the logits alone)")
    kd_weight: float = Field(1.0, ge=0, description="weight of the OFA loss on the student's own logits")
    ce_weight: float = Field(1.0, ge=0, description="weight of cross-entropy on the labels")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the CE term")

    @field_validator("eps")
    @classmethod
    def _eps_in_range(cls, v: float) -> float:
        lo, hi = EPS_RANGE
        if not lo <= v <= hi:
            raise ValueError(
                f"eps must be between {lo:g} and {hi:g}: below 1 it weakens the label's weight instead of "
                f"enhancing it, and above {hi:g} the target term (up to 2^eps) drowns the teacher's other "
                "classes; the authors use 1.0 (CIFAR-100) and 1.5 (ImageNet)")
        return v


def ofa_loss(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor, eps: float,
             temperature: float = 1.0) -> torch.Tensor:
    """The paper's loss, batch mean: teacher probabilities as soft targets, the label's weight enhanced."""
    log_ps = F.log_softmax(student.float() / temperature, dim=1)
    weights = F.softmax(teacher.float().detach() / temperature, dim=1)
    p_c = weights.gather(1, targets.view(-1, 1))
    weights = weights.scatter(1, targets.view(-1, 1), (1.0 + p_c).pow(eps))
    return -(weights * log_ps).sum(dim=1).mean()


def _sep_conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3×3 (strided) then pointwise 1×1, each with BatchNorm + ReLU: MobileNet's cheap block."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def conv_projector(channels: int, width: int, later_stages: int, num_classes: int) -> nn.Sequential:
    """A 4-D stage → logits: one depthwise-separable block per later stage (stride 2, channels
    doubling up to ``width``; OFA's own recipe), global pooling, linear.

    Why this small: the branch must turn an early map into class evidence, which needs some depth
    of its own, but a branch as strong as the rest of the network would learn the teacher by
    itself and pass little back to the student's stage (and would cost as much to train).
    Separable blocks keep all four branches at 7% of resnet18's parameters (17% of a resnet18
    at widths 16–128, 30% of mobilenetv3_small_100, whose last stage is wide).
    """
    blocks: list[nn.Module] = []
    cin = channels
    for i in range(max(1, later_stages)):
        last = i == max(1, later_stages) - 1
        cout = width if last else min(width, cin * 2)
        blocks.append(_sep_conv(cin, cout, 2 if later_stages else 1))
        cin = cout
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


class _MeanTokens(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def token_projector(dim: int, mix: bool, num_classes: int) -> nn.Sequential:
    """Tokens [B, N, C] → logits: (for a stage before the last) one transformer block to mix the
    tokens, LayerNorm, the mean over all tokens (class token included, so models without one work
    the same), linear.

    Why one block and mlp_ratio 2: an intermediate ViT block's tokens are still mostly local, and
    a linear probe of their mean asks those blocks to become classifiers early; one mixing block
    lets the branch gather evidence itself, at 8·C² parameters, two thirds of a student block at
    mlp_ratio 4 (OFA stacks up to three blocks per branch). The last stage's tokens already are
    what the student's head reads: norm + linear suffices. Measured: 17% of vit_tiny's parameters;
    for a 3-block student it is 60% (two of its three blocks get a mixer), and its OFA epoch
    costs about three plain ones (training only: nothing of it is saved).
    """
    from timm.models.vision_transformer import Block

    heads = next(h for h in (4, 3, 2, 1) if dim % h == 0 and (dim // h >= 16 or h == 1))
    mixer: list[nn.Module] = [Block(dim, heads, mlp_ratio=2.0)] if mix else []
    return nn.Sequential(*mixer, nn.LayerNorm(dim), _MeanTokens(), nn.Linear(dim, num_classes))


def build_projectors(stages: list[torch.Tensor], num_classes: int) -> nn.ModuleList:
    """One projector per stage output, shaped by the tensor it will read (from a dry forward pass)."""
    maps = [s.shape[1] for s in stages if s.ndim == 4]
    width = max(maps, default=0)
    out = nn.ModuleList()
    for i, s in enumerate(stages):
        later = len(stages) - 1 - i
        if s.ndim == 4:
            out.append(conv_projector(s.shape[1], width, later, num_classes))
        elif s.ndim == 3:
            out.append(token_projector(s.shape[-1], later > 0, num_classes))
        else:
            raise ValueError(f"ofa: a stage output of shape {tuple(s.shape)} is neither a feature map [B, C, H, W] "
                             "nor tokens [B, N, C]")
    return out.to(stages[0].device)


@LOSSES.register("ofa", params=OFAParams,
                 help="OFA-KD: branches at several student stages learn the teacher's logits (any two families)")
class OFADistiller(LossTermModule):
    """OFA-KD's loss: projected stage branches + the final logits against the teacher, plus CE.

    The trainer taps the student's stages, runs one dry forward pass and calls :meth:`build`
    before it builds the optimizer, to which it adds :meth:`parameters`. Only the teacher's
    logits are read, so the cache of teacher logits still applies.
    """

    needs_teacher = True
    needs_stage_features = True

    def __init__(self, p: OFAParams) -> None:
        super().__init__()
        self.p = p
        self.stage_count = p.stages
        self.projectors = nn.ModuleList()

    def build(self, stages: list[torch.Tensor], num_classes: int) -> None:
        """Create the projectors for these stage outputs (the last ``stages`` of them)."""
        self.projectors = build_projectors(stages[-self.stage_count:], num_classes)

    def forward(self, inp: LossInputs) -> torch.Tensor:
        assert inp.teacher_logits is not None
        if inp.student_stages is None or not len(self.projectors):
            raise RuntimeError("ofa: no stage features or projectors; build() must run on a dry forward pass first "
                               "(the trainer's LossComputer does it)")
        p, t, y = self.p, inp.teacher_logits, inp.targets
        feats = inp.student_stages[-len(self.projectors):]
        branches = sum(ofa_loss(proj(f), t, y, p.eps, p.temperature)
                       for proj, f in zip(self.projectors, feats, strict=True)) if p.branch_weight > 0 else 0.0
        final = ofa_loss(inp.student_logits, t, y, p.eps, p.temperature)
        ce = F.cross_entropy(inp.student_logits.float(), y, label_smoothing=p.label_smoothing)
        return p.branch_weight * branches + p.kd_weight * final + p.ce_weight * ce  # type: ignore[return-value]
