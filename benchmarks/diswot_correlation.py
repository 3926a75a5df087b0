"""Do the training-free proxies rank students by the accuracy they reach after distillation?

Takes N candidates from one search space (seeded sample), scores each with DisWOT at
random initialisation (combined, semantic, relation), counts params and MACs, draws a
random score, then distills every candidate with the same short budget and reports
Kendall's tau and Spearman's rho of each proxy against the distilled accuracy. Also the
search cost (scoring all candidates) against distilling all of them, measured.

    python benchmarks/diswot_correlation.py --data synthetic --candidates 16 --epochs 6
"""

from __future__ import annotations

import argparse
import random
import time

import common
import torch
from scipy.stats import kendalltau, spearmanr

from edgekd.engines.models.build import build_model
from edgekd.engines.models.stats import count_macs, count_params
from edgekd.engines.search.scoring import Normalizer, compare, signature
from edgekd.engines.search.spaces import ResNetParams, ResNetSpace, ViTParams, build_space

SPACE = ResNetParams(blocks=["basic", "bottleneck"], depths=[1, 2], widths=[16, 24, 32, 48])


def sample(space_name: str, n: int, seed: int, image_size: int) -> tuple[list[tuple[str, dict]], list[str]]:
    """``n`` candidates: from the ResNet space, or (``mixed``) half ResNets and half small ViTs
    (edgekd's ``vit`` space at this input size), each half drawn with the seed."""
    rng = random.Random(seed)
    spaces = [ResNetSpace(SPACE)]
    if space_name == "mixed":
        spaces.append(build_space("vit", ViTParams(), image_size))
    cands, keys = [], []
    for i, space in enumerate(spaces):
        k = n // len(spaces) + (1 if i < n % len(spaces) else 0)
        for g in rng.sample(list(space.all_genomes()), k):
            cands.append(space.model(g))
            keys.append(space.key(g) if space_name == "resnet" else f"{space.name}:{space.key(g)}")
    return cands, keys


def score_all(cands, bundle, teacher_arch, seed: int, batch: int = 64):
    """DisWOT components for every candidate, on one batch, teacher and students at random init."""
    xb, yb = bundle.train_sample(batch, seed)
    x = bundle.normalize(xb)
    torch.manual_seed(seed)
    t_sig = signature(build_model(teacher_arch["model"], bundle.num_classes, teacher_arch["kwargs"]), x, yb)
    out = []
    for name, kwargs in cands:
        torch.manual_seed(seed + 1)
        out.append(compare(t_sig, signature(build_model(name, bundle.num_classes, kwargs), x, yb)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "synthetic-small", "digits"])
    ap.add_argument("--space", default="resnet", choices=["resnet", "mixed"],
                    help="mixed: half the candidates ResNets, half small ViTs (a CNN teacher's mixed set)")
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0, help="candidate sample, scoring batch and init, training")
    ap.add_argument("--score-seeds", type=int, nargs="+", default=[0, 1, 2], help="extra scoring seeds (variance)")
    args = ap.parse_args()
    bundle = common.data(args.data)
    teacher = common.teacher(args.data, bundle)
    cands, keys = sample(args.space, args.candidates, args.seed, bundle.image_size)

    t0 = time.perf_counter()
    scores = score_all(cands, bundle, common.TEACHER, args.seed)
    search_seconds = time.perf_counter() - t0
    norm = Normalizer.fit(scores)
    proxies = {
        "diswot": [norm.combined(s) for s in scores],
        "diswot_semantic": [-s.semantic_distance for s in scores],
        "diswot_relation": [-s.relation_distance for s in scores],
        "params": [count_params(build_model(n, bundle.num_classes, k)) for n, k in cands],
        "macs": [count_macs(build_model(n, bundle.num_classes, k), bundle.image_size) for n, k in cands],
        "random": [random.Random(f"{args.seed}-{i}").random() for i in range(len(cands))],
    }
    extra = {}
    for s in args.score_seeds:
        sc = score_all(cands, bundle, common.TEACHER, s)
        n = Normalizer.fit(sc)
        extra[s] = [n.combined(x) for x in sc]

    accs, train_seconds = [], 0.0
    cfg = common.student_config(args.epochs, common.KD)
    for key, (name, kwargs) in zip(keys, cands, strict=True):
        t1 = time.perf_counter()
        _, r = common.train_student(name, kwargs, bundle, cfg, teacher, args.seed)
        train_seconds += time.perf_counter() - t1
        accs.append(round(r.best_accuracy, 3))
        print(f"{key}: distilled {accs[-1]:.2f}%  diswot {proxies['diswot'][len(accs) - 1]:.3f}", flush=True)

    table = {}
    for name, vals in proxies.items():
        tau, rho = kendalltau(vals, accs).statistic, spearmanr(vals, accs).statistic
        table[name] = {"kendall_tau": round(float(tau), 3), "spearman_rho": round(float(rho), 3)}
    seeds_tau = {s: round(float(kendalltau(v, accs).statistic), 3) for s, v in extra.items()}
    best = max(range(len(accs)), key=lambda i: proxies["diswot"][i])
    payload = {
        "data": args.data, "space": SPACE.model_dump(), "candidates": keys, "epochs": args.epochs, "seed": args.seed,
        "teacher_accuracy": common.accuracy(teacher, bundle), "distilled_accuracy": accs,
        "proxies": {k: [float(x) for x in v] for k, v in proxies.items()}, "correlation": table,
        "diswot_tau_by_scoring_seed": seeds_tau,
        "search_seconds": round(search_seconds, 2), "distill_all_seconds": round(train_seconds, 1),
        "cost_ratio": round(train_seconds / search_seconds, 1),
        "diswot_pick": {"candidate": keys[best], "accuracy": accs[best], "rank": sorted(accs, reverse=True).index(accs[best]) + 1},
        "best_candidate": {"candidate": keys[accs.index(max(accs))], "accuracy": max(accs)},
    }
    payload["candidate_set"] = args.space
    payload["by_family"] = by_family(keys, proxies["diswot"], accs)
    path = common.save(f"diswot_correlation_{args.data}" + ("_mixed" if args.space == "mixed" else ""), payload)
    print(f"\n{args.candidates} candidates, {args.epochs} epochs KD each, seed {args.seed}, teacher "
          f"{payload['teacher_accuracy']:.2f}% · {path}")
    print("| proxy | Kendall τ | Spearman ρ |\n|---|---|---|")
    for name, v in sorted(table.items(), key=lambda kv: -kv[1]["kendall_tau"]):
        print(f"| {name} | {v['kendall_tau']:+.3f} | {v['spearman_rho']:+.3f} |")
    print(f"DisWOT τ by scoring seed: {seeds_tau}")
    print(f"by family: {payload['by_family']}")
    print(f"search cost: scoring {search_seconds:.1f} s vs distilling all {train_seconds:.0f} s "
          f"= {payload['cost_ratio']}× cheaper; DisWOT's pick ranks #{payload['diswot_pick']['rank']}")


def by_family(keys: list[str], scores: list[float], accs: list[float]) -> dict[str, object]:
    """Within each family, and whether DisWOT puts the family that distils better on top."""
    fams = {k.split(":", 1)[0] if k.startswith("vit:") else "resnet" for k in keys}
    out: dict[str, object] = {}
    for f in sorted(fams):
        idx = [i for i, k in enumerate(keys) if (k.startswith("vit:") if f == "vit" else not k.startswith("vit:"))]
        if len(idx) >= 3:
            out[f] = {"kendall_tau": round(float(kendalltau([scores[i] for i in idx], [accs[i] for i in idx]).statistic), 3),
                      "mean_accuracy": round(sum(accs[i] for i in idx) / len(idx), 2),
                      "mean_score": round(sum(scores[i] for i in idx) / len(idx), 3)}
    return out


if __name__ == "__main__":
    main()
