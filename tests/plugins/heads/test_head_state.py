"""Head state: the EMA statistics, t, the annealing step and the margin generator evolve as
specified over several steps (their save and load is tested for every registered head in
test_registry_heads.py), and give the same logits whether the classes are in one shard or split over ranks (Partial FC, -1 labels)."""
import copy
import threading

import pytest
import torch

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

PLUGINS = load_plugins()
BUILTIN = [c.name for c in PLUGINS.registry("head") if c.provider.dist == "facebone"]
STATEFUL = {"adaface": ["batch_mean", "batch_std"], "curricularface": ["t"], "sphereface": ["step"],
            "elasticface_arc": ["generator_state"], "elasticface_cos": ["generator_state"]}
N, C = 16, 10


def build(name, seed=0, **options):
    comp = PLUGINS.get("head", name)
    opts, problems = build_options(comp.options, options, name)
    assert problems == []
    return comp.factory(opts, num_classes=C, embedding_size=8, seed=seed)


def batch(step, n=N, c=C):
    g = torch.Generator().manual_seed(100 + step)
    cos = torch.rand(n, c, generator=g) * 1.8 - 0.9
    labels = torch.randint(0, c, (n,), generator=g)
    labels[step % n] = -1
    norms = torch.rand(n, 1, generator=g) * 30 + 5
    return cos, labels, norms


def test_the_stateful_heads_are_the_expected_ones():
    for name in BUILTIN:
        assert sorted(dict(build(name).named_buffers())) == sorted(STATEFUL.get(name, [])), name


def test_adaface_ema_over_steps_and_frozen_in_eval():
    head = build("adaface", t_alpha=0.1)
    mu, sigma = 20.0, 100.0
    for step in range(6):
        cos, labels, norms = batch(step)
        head(cos, labels, norms)
        n = norms[:, 0].double().clamp(0.001, 100)
        mu = 0.1 * n.mean().item() + 0.9 * mu
        sigma = 0.1 * n.std().item() + 0.9 * sigma
        assert head.batch_mean.item() == pytest.approx(mu, rel=1e-6)
        assert head.batch_std.item() == pytest.approx(sigma, rel=1e-6)
    head.eval()
    head(*batch(7))
    assert head.batch_mean.item() == pytest.approx(mu, rel=1e-6)
    head.train()
    one = batch(8, n=1)
    head(*one)  # one row: the mean moves, the std (undefined) does not
    assert head.batch_std.item() == pytest.approx(sigma, rel=1e-6)
    assert head.batch_mean.item() == pytest.approx(0.1 * one[2].item() + 0.9 * mu, rel=1e-6)


def test_curricularface_t_over_steps_ignores_minus_one_rows():
    head = build("curricularface", t_alpha=0.2)
    t = 0.0
    for step in range(6):
        cos, labels, norms = batch(step)
        labels[: step] = -1
        head(cos, labels, norms)
        valid = labels >= 0
        t = 0.2 * cos[torch.arange(N)[valid], labels[valid]].double().mean().item() + 0.8 * t
        assert head.t.item() == pytest.approx(t, rel=1e-5)
    cos, labels, norms = batch(9)
    head(cos, torch.full_like(labels, -1), norms)  # no target here: t unchanged
    head.eval()
    head(*batch(10))
    assert head.t.item() == pytest.approx(t, rel=1e-5)


def test_sphereface_counts_training_steps_for_the_annealing():
    head = build("sphereface", margin=4.0, anneal_base=1000.0)
    for step in range(1, 5):
        head(*batch(step))
        assert head.step.item() == step
        assert head.anneal_lambda().item() == pytest.approx(max(5.0, 1000.0 / (1 + 0.12 * step)))
    head.eval()
    head(*batch(5))
    assert head.step.item() == 4


def test_elasticface_generator_state_is_a_buffer_that_advances():
    head = build("elasticface_arc", seed=11)
    first = head.generator_state.clone()
    head(*batch(0))
    second = head.generator_state.clone()
    assert not torch.equal(first, second) and second.dtype == torch.uint8
    assert not torch.equal(build("elasticface_arc", seed=12).generator_state, first)


def shard(cos, labels, lo, hi):
    """Columns [lo, hi) of a rank, labels remapped, -1 where the class lives elsewhere."""
    local = torch.where((labels >= lo) & (labels < hi), labels - lo, torch.full_like(labels, -1))
    return cos[:, lo:hi], local


class FakeGroup:
    """``all_reduce_sum`` over simulated ranks running in threads: each deposits its tensor,
    waits for the others and gets the sum (what the gloo/nccl SUM would return)."""

    def __init__(self, world_size):
        self.barrier = threading.Barrier(world_size)
        self.slots = {}

    def all_reduce_sum(self, tensor):
        rank = threading.current_thread().name
        self.slots[rank] = tensor.detach().clone()
        self.barrier.wait()
        total = sum(self.slots[r] for r in sorted(self.slots))
        self.barrier.wait()
        return total


def run_ranks(heads, inputs):
    results = [None] * len(heads)
    errors = []

    def work(r):
        try:
            results[r] = heads[r](*inputs[r])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,), name=str(r)) for r in range(len(heads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("name", BUILTIN)
def test_sharded_classes_give_the_logits_of_one_shard(name, monkeypatch):
    """Two simulated ranks (columns 0-3 and 4-9, labels -1 for the other rank's classes) give the
    columns of the one-process logits, over several steps of state. Statistics over target logits
    go through all_reduce_sum, here summed over the two rank threads."""
    import facebone.plugins.heads.curricularface_model as curricular

    group = FakeGroup(2)
    monkeypatch.setattr(curricular, "all_reduce_sum", group.all_reduce_sum)
    options = {"interclass_filtering_threshold": 0.5} if name == "combined" else {}
    full = build(name, seed=3, **options)
    ranks = [copy.deepcopy(full), copy.deepcopy(full)]
    bounds = [(0, 4), (4, C)]
    for step in range(4):
        cos, labels, norms = batch(step)
        parts = [(*shard(cos, labels, lo, hi), norms) for lo, hi in bounds]
        got = run_ranks(ranks, parts)
        monkeypatch.setattr(curricular, "all_reduce_sum", lambda t: t)  # one process
        want = full(cos, labels, norms)
        monkeypatch.setattr(curricular, "all_reduce_sum", group.all_reduce_sum)
        torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=1e-6, atol=1e-5)
        for head in ranks:
            for key, value in full.state_dict().items():
                torch.testing.assert_close(head.state_dict()[key], value, rtol=1e-6, atol=0)
