"""Worker of the 2-process classifier tests (spawned by test_classifier.py; gloo on CPU).

Each rank computes its share of fixed global batches and saves what the tests compare with a
one-process computation: loss, gradients, gathered states, sampled columns.
"""
from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist


CASES = {  # name: (dtype, subcenters, rows per rank, embedding size, classes)
    "f64": (torch.float64, 1, 4, 8, 11),
    "f32": (torch.float32, 1, 4, 8, 11),
    "sub3": (torch.float64, 3, 4, 8, 11),
    "f32_large": (torch.float32, 1, 32, 64, 1001),
}


def global_batch(seed: int, rows: int, dim: int, classes: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(rows, dim, generator=g, dtype=torch.float64).to(dtype) * 3
    labels = torch.randint(0, classes, (rows,), generator=g)
    return embeddings, labels


def margin_head(cosine: torch.Tensor, labels: torch.Tensor, scale: float = 16.0, margin: float = 0.2):
    """CosFace with -1 labels: no margin for rows whose class is not among the columns."""
    rows = torch.nonzero(labels >= 0).squeeze(1)
    shift = torch.zeros_like(cosine)
    shift[rows, labels[rows]] = margin
    return (cosine - shift) * scale


def step(classifier, embeddings: torch.Tensor, labels: torch.Tensor):
    """One forward and backward; (loss, grad of these embeddings, grad of the shard, labels_local)."""
    embeddings = embeddings.clone().requires_grad_(True)
    cosine, local, norms = classifier(embeddings, labels)
    loss = classifier.cross_entropy(margin_head(cosine, local), local)
    loss.backward()
    return loss.detach(), embeddings.grad, classifier.weight.grad.clone(), local


def head_names() -> list[str]:
    from facebone.plugin.discovery import get_plugins

    return get_plugins().registry("head").names()


def head_step(name: str, rank: int, world: int, n: int = 6, dim: int = 8, classes: int = 11):
    """A registered head (default options) on the classifier, with its own loss terms: (loss, grads)."""
    from facebone.plugin.build import build_component
    from facebone.plugin.discovery import get_plugins
    from facebone.plugin.options import build_options
    from facebone.train.classifier import Classifier
    from facebone.train.objective import classification_terms

    comp = get_plugins().get("head", name)
    head = build_component(comp, build_options(comp.options, {}, name)[0], num_classes=classes,
                           embedding_size=dim, seed=0).double()
    clf = Classifier(classes, dim, subcenters=3 if name == "subcenter" else 1, seed=5).double()
    emb, labels = global_batch(11, n * world, dim, classes, torch.float64)
    emb = (emb * 4)[rank * n:(rank + 1) * n].clone().requires_grad_(True)  # norms around 20 (AdaFace, MagFace)
    terms = classification_terms(emb, labels[rank * n:(rank + 1) * n], classifier=clf, head=head)
    loss = sum(terms.values())
    loss.backward()
    return {"loss": loss.detach(), "grad_embeddings": emb.grad, "grad_weight": clf.weight.grad.clone(),
            "state": {k: v.clone() for k, v in head.state_dict().items()}}


def main(rank: int, world: int, out_dir: str) -> None:
    sys.path.insert(0, os.path.dirname(__file__))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=world)
    from facebone.train.classifier import Classifier

    results: dict = {}
    for name, (dtype, k, n, dim, classes) in CASES.items():
        emb, labels = global_batch(7, n * world, dim, classes, dtype)
        clf = Classifier(classes, dim, type="partial_fc", sample_rate=1.0, subcenters=k, seed=5).to(dtype)
        loss, g_emb, g_w, local = step(clf, emb[rank * n:(rank + 1) * n], labels[rank * n:(rank + 1) * n])
        results[name] = {"loss": loss, "grad_embeddings": g_emb, "grad_weight": g_w, "labels_local": local,
                         "full_weight": clf.full_state(dst=None)["weight"], "num_local": clf.num_local}
    results["heads"] = {name: head_step(name, rank, world) for name in head_names()}
    n, dim, classes = 4, 8, 11
    # SGD momentum state gathered to rank 0, then resharded from a whole matrix
    emb, labels = global_batch(7, n * world, dim, classes, torch.float64)
    clf = Classifier(classes, dim, seed=5).double()
    opt = torch.optim.SGD(clf.parameters(), lr=0.1, momentum=0.9)
    step(clf, emb[rank * n:(rank + 1) * n], labels[rank * n:(rank + 1) * n])
    opt.step()
    results["momentum"] = clf.full_optimizer_state(opt, dst=0)
    results["weight_after_step"] = clf.full_state(dst=0)
    whole = torch.arange(classes * dim, dtype=torch.float64).view(classes, dim)
    clf.load_full_optimizer_state(opt, {"momentum_buffer": whole})
    results["resharded_momentum"] = opt.state[clf.weight]["momentum_buffer"]
    clf.load_state_dict({"weight": whole, "sample_step": torch.tensor(3)})
    results["resharded_weight"] = clf.weight.detach().clone()
    # Partial FC 0.1 over many steps: what each rank scored
    big, n = 200, 8
    clf = Classifier(big, dim, type="partial_fc", sample_rate=0.1, seed=5)
    results["pfc_weight"] = clf.full_state(dst=None)["weight"]
    sampled = []
    for s in range(25):
        emb, labels = global_batch(100 + s, n * world, dim, big, torch.float32)
        if s % 5 == 4:  # 16 positives on rank 0: more than its 10 sampled columns
            labels = torch.arange(n * world) * 5
        cosine, local, _ = clf(emb[rank * n:(rank + 1) * n], labels[rank * n:(rank + 1) * n])
        sampled.append({"embeddings": emb, "labels": labels, "labels_local": local, "cosine": cosine.detach()})
    results["sampled"] = sampled
    results["class_start"] = clf.class_start
    torch.save(results, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()
