"""Structured (channel) pruning to a MACs, parameter or latency target with torch-pruning.

torch-pruning's dependency graph (DepGraph) keeps the network valid across residual adds,
concatenations, depthwise/grouped convolutions, squeeze-excite blocks and normalisation
layers, and removes the channels for real (smaller dense tensors, not masks), so the
model is faster on every runtime. We wrap it: a layer it cannot handle is found up front
and named, and the target is reached by small pruner steps with the model measured in
between (torch-pruning's own ratio is a channel ratio, not a MACs or latency target).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import PruningError
from edgekd.engines.models.attention import (
    attention_heads,
    channel_parameters,
    fixed_parameters,
    known_parameter_names,
    mend_attention,
    outer_layers,
)
from edgekd.engines.models.build import classifier_names
from edgekd.engines.models.families import prunes_inner_only
from edgekd.engines.models.stats import count_macs, count_params

# Leaf layers with weights that torch-pruning knows how to slice (subclasses included:
# timm's BatchNormAct2d, LayerNorm2d, ... are subclasses of these).
SUPPORTED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
             nn.modules.instancenorm._InstanceNorm, nn.PReLU, nn.Embedding, nn.MultiheadAttention)
MICRO_STEPS = 60  # resolution of the search for the target: each micro-step removes ~1/60 of max_ratio


@dataclass
class PruneTarget:
    kind: str  # macs | params | latency
    value: float  # the ratio (>1) for macs/params, milliseconds for latency


def resolve_layers(model: nn.Module, patterns: list[str]) -> list[str]:
    """Module names matching ``patterns`` (exact names or shell-style globs); unknown ones are errors."""
    names = [n for n, _ in model.named_modules() if n]
    out: list[str] = []
    for pat in patterns:
        hits = [n for n in names if n == pat or fnmatch.fnmatchcase(n, pat)]
        if not hits:
            import difflib

            close = difflib.get_close_matches(pat, names, n=3)
            raise PruningError(f"prune.ignored_layers: no layer named {pat!r}",
                               hint=(f"did you mean {close}? " if close else "") + "layer names are model.named_modules() names")
        out += hits
    return sorted(set(out))


def custom_layers(model: nn.Module) -> list[tuple[str, str]]:
    """Modules holding their own parameters that torch-pruning has no rule for.

    torch-pruning guesses how to slice such "unwrapped" parameters (the last non-singleton
    dimension); that is right for a per-channel scale and wrong for, say, a matmul weight.
    """
    known = known_parameter_names(model)  # tokens, position embeddings, LayerScales: their dimension is stated
    return [(name, type(mod).__name__) for name, mod in model.named_modules()
            if not isinstance(mod, SUPPORTED)
            and any(f"{name}.{p}".lstrip(".") not in known for p, _ in mod.named_parameters(recurse=False))]


def _frozen_roots(model: nn.Module, example: torch.Tensor, frozen: list[nn.Module]) -> list[nn.Module]:
    """Layers whose output channels are coupled to ``frozen`` ones: ignoring those keeps
    the frozen layers' channels intact (ignoring a custom layer alone would leave its
    producer's channels prunable and break the shapes)."""
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example,
                                                  unwrapped_parameters=channel_parameters(model))
    targets = {id(m) for m in frozen} | {id(p) for m in frozen for p in m.parameters(recurse=False)}
    roots = []
    for group in graph.get_all_groups(root_module_types=[nn.modules.conv._ConvNd, nn.Linear]):
        if any(id(item.dep.target.module) in targets for item in group):
            roots.append(group[0].dep.target.module)
    return roots


def _ignored_modules(model: nn.Module, example: torch.Tensor, ignored: list[str],
                     skip_custom: bool) -> tuple[list[nn.Module], list[tuple[str, str]]]:
    """Modules the pruner must leave alone, and the custom layers it is trusted with."""
    modules = dict(model.named_modules())
    names = set(classifier_names(model)) | set(resolve_layers(model, ignored))
    custom = custom_layers(model)
    frozen = [n for n, _ in custom if skip_custom or n in names]
    names |= set(frozen)
    out = [modules[n] for n in sorted(names) if n in modules]
    if prunes_inner_only(model):
        out += outer_layers(model)
    if frozen:
        out += _frozen_roots(model, example, [modules[n] for n in frozen])
    trusted = [(n, t) for n, t in custom if n not in frozen]
    return out, trusted


def _failing_module(model: nn.Module, example: torch.Tensor) -> tuple[str | None, Exception | None]:
    """Run a forward pass; on failure, the name of the innermost module that was running."""
    stack: list[str] = []
    handles = []

    def enter(name: str):
        return lambda _m, _a: stack.append(name)  # list.append returns None: the input is unchanged

    def leave(_m: nn.Module, _a: object, _o: object) -> None:
        stack.pop()

    for name, mod in model.named_modules():
        if name:
            handles.append(mod.register_forward_pre_hook(enter(name)))
            handles.append(mod.register_forward_hook(leave))
    was_training = model.training
    model.eval()  # a batch of one: BatchNorm must use its running statistics
    try:
        with torch.no_grad():
            model(example)
        return None, None
    except Exception as exc:  # any failure means the pruned shapes are inconsistent
        return (stack[-1] if stack else None), exc
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def graph_failure_site(exc: BaseException) -> str | None:
    """Where in the model torch-pruning's dependency graph failed: the op it was mapping and the
    nearest named layers before and after it, read from the failing frame (its errors name no
    layer: a ShuffleNetV2 fails with a bare ZeroDivisionError in a channel-shuffle reshape)."""
    node = graph = None
    tb = exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        node = local.get("node", node)
        graph = local["self"] if hasattr(local.get("self"), "_module2name") else graph
        tb = tb.tb_next
    if node is None or graph is None or not hasattr(node, "inputs"):
        return None
    names = graph._module2name

    def nearest(direction: str) -> str | None:
        seen, todo = {id(node)}, list(getattr(node, direction))
        while todo:
            n = todo.pop(0)
            if id(n) in seen:
                continue
            seen.add(id(n))
            if getattr(n, "module", None) in names and names[n.module]:
                return names[n.module]
            todo += list(getattr(n, direction, []))
        return None

    op = type(node.module).__name__.strip("_").removesuffix("Op").lower()
    return f"a {op} between layer {nearest('inputs') or 'the input'} and layer {nearest('outputs') or 'the output'}"


GradientFn = Callable[[nn.Module], None]  # fills .grad (for gradient-based importance)
Measure = Callable[[nn.Module], float]  # current value of the target quantity


class ChannelPruner:
    """One torch-pruning MetaPruner driven in small steps towards successive targets."""

    def __init__(self, model: nn.Module, example: torch.Tensor, *, importance: Any, global_pruning: bool,
                 ignored: list[str], skip_unsupported: bool, round_to: int | None,
                 max_ratio: float = 0.95, gradient_fn: GradientFn | None = None) -> None:
        import torch_pruning as tp

        self.model, self.example = model, example
        self.gradient_fn = gradient_fn
        self.ignored, self.trusted_custom = _ignored_modules(model, example, ignored, skip_unsupported)
        try:
            self.pruner = tp.pruner.MetaPruner(
                model, example, importance=importance, global_pruning=global_pruning,
                pruning_ratio=max_ratio, iterative_steps=MICRO_STEPS, ignored_layers=[*self.ignored, *fixed_parameters(model)],
                round_to=round_to, num_heads=attention_heads(model), unwrapped_parameters=channel_parameters(model),
            )
        except Exception as exc:
            site = graph_failure_site(exc)
            if site is None:
                raise self._error("torch-pruning could not trace the model", exc, None) from None
            raise PruningError(
                f"torch-pruning could not trace the model at {site}: {type(exc).__name__}: {exc}",
                hint="torch-pruning cannot map channels through that reshape (ShuffleNet's channel shuffle is one), "
                "and ignoring layers does not remove it; prune another student, or leave 'prune' out of stages "
                "(the distilled student is kept)") from None
        self.micro_steps = 0

    def _error(self, what: str, exc: Exception, layer: str | None) -> PruningError:
        """Name the layer: the one whose forward failed, else the custom layers torch-pruning guessed at."""
        suspects = [f"{layer} ({type(dict(self.model.named_modules())[layer]).__name__})"] if layer else \
            [f"{n} ({t})" for n, t in self.trusted_custom]
        names = [s.split(" ")[0] for s in suspects]
        where = f" at layer {', '.join(suspects)}" if suspects else ""
        return PruningError(
            f"{what}{where}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint=(f"leave it alone with prune.ignored_layers: {names}, or set prune.skip_unsupported: true "
                  "to skip every layer torch-pruning has no rule for") if suspects else
            "add the failing layer to prune.ignored_layers",
        )

    def step_until(self, reached: Callable[[], bool]) -> bool:
        """Prune in micro-steps until ``reached()``; False if the pruner ran out of channels."""
        # Gradient-based importance: gradients once per call, not per micro-step. torch-pruning
        # slices ``.grad`` along with the weights, so the remaining channels keep theirs; the
        # micro-steps are only the search resolution of one pruning step (8 batches each time
        # made Taylor pruning ~30x the cost of magnitude for the same result).
        if self.gradient_fn is not None and not reached():
            self.model.zero_grad(set_to_none=True)
            self.gradient_fn(self.model)
        try:
            while not reached():
                if self.micro_steps >= MICRO_STEPS:
                    return False
                try:
                    self.pruner.step()
                except Exception as exc:  # torch-pruning's own errors rarely say which layer
                    raise self._error("pruning failed", exc, None) from None
                mend_attention(self.model)
                self.micro_steps += 1
                layer, exc = _failing_module(self.model, self.example)
                if exc is not None:
                    raise self._error("the pruned model no longer runs", exc, layer)
        finally:
            self.model.zero_grad(set_to_none=True)
        return True

    def history(self) -> list[Any]:
        """Plain-data record of what was pruned (JSON-safe), for the model artifact."""
        return [[str(n), bool(o), [int(i) for i in idx]] for n, o, idx in self.pruner.pruning_history()]


def size_measure(kind: str, input_size: int) -> Measure:
    if kind == "macs":
        return lambda m: float(count_macs(m, input_size) or 0)
    return lambda m: float(count_params(m))


def magnitude_pruner(model: nn.Module, example: torch.Tensor, round_to: int | None) -> ChannelPruner:
    """The pruner for the teacher as a student source (and for probing how far it goes before
    any training): magnitude importance, per-layer, every supported layer. Magnitude needs no
    gradients, so the same cut can be replayed on every rank and probed on untrained weights."""
    from edgekd.core.registries import IMPORTANCES

    criterion = IMPORTANCES.get("magnitude")(IMPORTANCES.parse_params("magnitude", {}, key="magnitude"))
    return ChannelPruner(model, example, importance=criterion.build(), global_pruning=False, ignored=[],
                         skip_unsupported=True, round_to=round_to)

