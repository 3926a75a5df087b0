#!/usr/bin/env python3
"""A teacher trained the way users train one, outside edgekd: plain PyTorch + torchvision.

torchvision's ``ImageFolder``, the usual recipe (train: RandomResizedCrop + flip; eval:
Resize(size / 0.875) + CenterCrop; ToTensor; ImageNet Normalize), torchvision's resnet18,
SGD + cosine. Saves ``state_dict()`` as safetensors with the ``class_to_idx`` in its
metadata, and prints the validation accuracy this script measured (a JSON line). Imports
nothing of edgekd.

    python benchmarks/plain_train_teacher.py data/shapes --size 96 --epochs 4 --out teacher96.safetensors

``--model vit``: timm's ``vit_tiny_patch16_224`` cut to the input (4×4 patches, depth 4), trained
as a ViT is (AdamW, weight decay 0.05, label smoothing 0.1, warm-up, gradient clipping), the
user's ViT the transformer issue starts from. Imports timm, nothing of edgekd.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from safetensors.torch import save_file
from torch import nn
from torchvision import datasets, models, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def loaders(root: str, size: int, batch: int, workers: int):
    train_tf = transforms.Compose([transforms.RandomResizedCrop(size, scale=(0.35, 1.0)),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                   transforms.Normalize(MEAN, STD)])
    eval_tf = transforms.Compose([transforms.Resize(int(size / 0.875)), transforms.CenterCrop(size),
                                  transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    tr = datasets.ImageFolder(f"{root}/train", train_tf)
    va = datasets.ImageFolder(f"{root}/val", eval_tf)
    g = torch.Generator().manual_seed(0)
    return (torch.utils.data.DataLoader(tr, batch, shuffle=True, num_workers=workers, drop_last=True, generator=g),
            torch.utils.data.DataLoader(va, 256, num_workers=workers), tr.class_to_idx)


@torch.no_grad()
def accuracy(model: nn.Module, loader) -> float:
    model.eval()
    hits = n = 0
    for x, y in loader:
        hits += int((model(x).argmax(1) == y).sum())
        n += len(y)
    return 100.0 * hits / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", choices=["resnet18", "vit"], default="resnet18")
    a = ap.parse_args()
    torch.manual_seed(0)
    train, val, class_to_idx = loaders(a.root, a.size, a.batch, a.workers)
    smoothing = 0.0
    if a.model == "vit":
        import timm

        model = timm.create_model("vit_tiny_patch16_224", num_classes=len(class_to_idx), img_size=a.size,
                                  patch_size=4, depth=4)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.05)
        smoothing = 0.1
    else:
        model = models.resnet18(num_classes=len(class_to_idx))
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.epochs * len(train), pct_start=0.15)
    t0 = time.time()
    for epoch in range(a.epochs):
        model.train()
        for x, y in train:
            loss = nn.functional.cross_entropy(model(x), y, label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            if a.model == "vit":
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{a.epochs} loss {loss.item():.3f} val {accuracy(model, val):.2f}% "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc = accuracy(model, val)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.out,
              metadata={"class_to_idx": json.dumps(class_to_idx)})
    print(json.dumps({"script_val_accuracy": round(acc, 3), "model": a.model, "size": a.size, "epochs": a.epochs,
                      "val_images": len(val.dataset), "seconds": round(time.time() - t0, 1), "out": a.out}))


if __name__ == "__main__":
    main()
