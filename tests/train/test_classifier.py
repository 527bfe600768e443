"""The core's classifier: sharding, Partial FC sampling, -1 labels, sub-centres, the distributed
softmax, and 2 gloo processes against one process with the full softmax."""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from facebone.train.classifier import Classifier, initial_centres, shard_range
from facebone.train.collectives import distributed_cross_entropy
from facebone.train.cosine import cosine_to_rows

sys.path.insert(0, str(Path(__file__).parent))
import classifier_worker as worker  # noqa: E402


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||."""
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("classes, world", [(11, 2), (10, 3), (7, 7), (1000, 8)])
def test_shards_are_contiguous_and_the_first_ranks_get_one_more(classes, world):
    ranges = [shard_range(classes, world, r) for r in range(world)]
    assert ranges[0][0] == 0 and sum(n for _, n in ranges) == classes
    assert all(start + n == nxt for (start, n), (nxt, _) in zip(ranges, ranges[1:]))
    sizes = [n for _, n in ranges]
    assert sizes == [classes // world + (r < classes % world) for r in range(world)]


def test_initial_centres_do_not_depend_on_the_sharding():
    whole = initial_centres(3, 0, 9000, 2, 4)
    assert whole.shape == (18000, 4) and abs(float(whole.std()) - 0.01) < 5e-4
    parts = [initial_centres(3, *shard_range(9000, 3, r), 2, 4) for r in range(3)]
    assert torch.equal(torch.cat(parts), whole)
    shard = Classifier(9000, 4, subcenters=2, seed=3, rank=1, world_size=3)
    assert torch.equal(shard.weight.detach(), parts[1])


def test_labels_of_other_ranks_are_minus_one():
    shard = Classifier(11, 4, rank=1, world_size=2)  # classes 6..10
    assert (shard.class_start, shard.num_local) == (6, 5)
    labels = torch.tensor([0, 5, 6, 8, 10, 3])
    cosine, local, norms = shard(torch.randn(6, 4), labels)
    assert local.tolist() == [-1, -1, 0, 2, 4, -1]
    assert cosine.shape == (6, 5) and norms.shape == (6, 1)


@pytest.mark.parametrize("chunk", [1 << 24, 7])  # one block of columns, or blocks of 1 column (5 rows)
def test_cosines_and_gradients_equal_normalised_linear(chunk, monkeypatch):
    monkeypatch.setattr("facebone.train.cosine.CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 7, dtype=torch.float64)
    (cosine_to_rows(x, w) * g).sum().backward()
    ours = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    expected = F.linear(F.normalize(x), F.normalize(w))
    (expected * g).sum().backward()
    assert torch.allclose(cosine_to_rows(x, w), expected, atol=1e-14)
    assert rel(ours[0], x.grad) < 1e-12 and rel(ours[1], w.grad) < 1e-12


def test_distributed_cross_entropy_is_plain_cross_entropy_in_one_process():
    torch.manual_seed(1)
    logits = (torch.randn(6, 9, dtype=torch.float64) * 20).requires_grad_(True)
    labels = torch.randint(0, 9, (6,))
    distributed_cross_entropy(logits, labels).backward()
    ours = logits.grad.clone()
    logits.grad = None
    expected = F.cross_entropy(logits, labels)
    expected.backward()
    value = distributed_cross_entropy(logits.detach(), labels).item()
    assert value == pytest.approx(expected.item(), rel=1e-14)
    assert rel(ours, logits.grad) < 1e-13


def test_subcenters_score_the_best_centre_of_each_class():
    clf = Classifier(5, 4, subcenters=3, seed=2).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    cosine, local, _ = clf(x, torch.tensor([0, 1, 2, 3, 4, 0]))
    w = F.normalize(clf.weight.detach().view(5, 3, 4), dim=2)
    expected = torch.einsum("nd,ckd->nck", F.normalize(x, dim=1), w).amax(dim=2)
    assert torch.allclose(cosine, expected, atol=1e-12) and local.tolist() == [0, 1, 2, 3, 4, 0]


def test_partial_fc_keeps_every_positive_and_samples_up_to_the_rate():
    clf = Classifier(1000, 8, type="partial_fc", sample_rate=0.1, subcenters=2, seed=4)
    seen = set()
    for s in range(30):
        labels = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(s))
        x = torch.randn(64, 8, generator=torch.Generator().manual_seed(100 + s))
        cosine, local, _ = clf(x, labels)
        assert cosine.shape == (64, 100)  # int(0.1 * 1000) columns, positives included
        assert (local >= 0).all()
        centres = F.normalize(clf.weight.detach().view(1000, 2, 8)[labels], dim=2)
        target = torch.einsum("nd,nkd->nk", F.normalize(x, dim=1), centres).amax(dim=1)
        assert torch.allclose(cosine[torch.arange(64), local], target, atol=1e-6)
        seen.add(tuple(cosine[0].tolist()[:3]))
    assert int(clf.sample_step) == 30 and len(seen) > 1
    many = torch.arange(150) * 6  # 150 positives: more than the 100 sampled columns
    cosine, local, _ = clf(torch.randn(150, 8), many)
    assert cosine.shape == (150, 150) and local.tolist() == list(range(150))


def test_sampling_is_restored_exactly_from_a_checkpoint():
    a = Classifier(500, 4, type="partial_fc", sample_rate=0.2, seed=9)
    labels, x = torch.randint(0, 500, (16,)), torch.randn(16, 4)
    for _ in range(3):
        a(x, labels)
    b = Classifier(500, 4, type="partial_fc", sample_rate=0.2, seed=9)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x, labels)[0], b(x, labels)[0])
    a.eval()
    assert a(x, labels)[0].shape == (16, 500)  # no sampling outside training


@pytest.mark.parametrize("kwargs, message", [
    ({"sample_rate": 0.0, "type": "partial_fc"}, r"sample_rate must be in \(0, 1\]"),
    ({"sample_rate": 1.5, "type": "partial_fc"}, r"sample_rate must be in \(0, 1\]"),
    ({"sample_rate": 0.5}, "needs type = 'partial_fc'"),
    ({"subcenters": 0}, "must be positive"),
])
def test_bad_classifier_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Classifier(10, 4, **kwargs)


# -- two gloo processes against one process --------------------------------------------------------

@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("gloo")
    mp.spawn(worker.main, args=(2, str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def one_process(name: str):
    dtype, k, n, dim, classes = worker.CASES[name]
    emb, labels = worker.global_batch(7, 2 * n, dim, classes, dtype)
    clf = Classifier(classes, dim, subcenters=k, seed=5).to(dtype)
    return worker.step(clf, emb, labels)


@pytest.mark.parametrize("name, tolerance", [("f64", 1e-12), ("f32", 1e-6), ("sub3", 1e-12), ("f32_large", 1e-6)])
def test_two_processes_equal_one_process_with_the_full_softmax(two_ranks, name, tolerance):
    dtype, k, n, dim, classes = worker.CASES[name]
    loss, grad_emb, grad_w, local = one_process(name)
    ranks = [r[name] for r in two_ranks]
    for r in ranks:  # the loss is the global one on every rank
        assert abs(float(r["loss"]) - float(loss)) <= tolerance * abs(float(loss))
    # a rank's embeddings get W x the global gradient of their rows (DDP then averages over W ranks)
    assert rel(torch.cat([r["grad_embeddings"] for r in ranks]) / 2, grad_emb) <= tolerance
    assert rel(torch.cat([r["grad_weight"] for r in ranks]), grad_w) <= tolerance
    assert [r["num_local"] for r in ranks] == [(classes + 1) // 2, classes // 2]
    whole = Classifier(classes, dim, subcenters=k, seed=5).to(dtype).weight.detach()
    assert torch.equal(ranks[0]["full_weight"], whole)
    # -1 exactly where the class lives on the other rank
    labels, half = worker.global_batch(7, 2 * n, dim, classes, dtype)[1], (classes + 1) // 2
    assert ranks[0]["labels_local"].tolist() == [int(c) if c < half else -1 for c in labels]
    assert ranks[1]["labels_local"].tolist() == [int(c) - half if c >= half else -1 for c in labels]


@pytest.mark.parametrize("name", worker.head_names())
def test_every_head_on_two_processes_equals_one_process(two_ranks, name):
    one = worker.head_step(name, 0, 1, n=12)
    ranks = [r["heads"][name] for r in two_ranks]
    for r in ranks:
        assert abs(float(r["loss"]) - float(one["loss"])) <= 1e-10 * abs(float(one["loss"]))
        for key, value in one["state"].items():  # EMA statistics, counters, generator state
            assert torch.allclose(r["state"][key].double(), value.double(), rtol=1e-10, atol=0), key
    assert rel(torch.cat([r["grad_embeddings"] for r in ranks]) / 2, one["grad_embeddings"]) <= 1e-10
    assert rel(torch.cat([r["grad_weight"] for r in ranks]), one["grad_weight"]) <= 1e-10


def test_optimizer_state_and_weights_gather_and_reshard(two_ranks):
    emb, labels = worker.global_batch(7, 8, 8, 11, torch.float64)
    clf = Classifier(11, 8, seed=5).double()
    opt = torch.optim.SGD(clf.parameters(), lr=0.1, momentum=0.9)
    worker.step(clf, emb, labels)
    opt.step()
    gathered = two_ranks[0]["momentum"]
    assert two_ranks[1]["momentum"] is None and two_ranks[1]["weight_after_step"] is None
    assert rel(gathered["momentum_buffer"], opt.state[clf.weight]["momentum_buffer"]) < 1e-12
    assert rel(two_ranks[0]["weight_after_step"]["weight"], clf.weight.detach()) < 1e-12
    whole = torch.arange(88, dtype=torch.float64).view(11, 8)
    for r, rows in ((0, slice(0, 6)), (1, slice(6, 11))):
        assert torch.equal(two_ranks[r]["resharded_momentum"], whole[rows])
        assert torch.equal(two_ranks[r]["resharded_weight"], whole[rows])


def test_partial_fc_in_two_processes_keeps_every_positive(two_ranks):
    weight = F.normalize(two_ranks[0]["pfc_weight"], dim=1)
    for s, steps in enumerate(zip(*(r["sampled"] for r in two_ranks))):
        for rank, got in enumerate(steps):
            start = two_ranks[rank]["class_start"]
            labels, local = got["labels"], got["labels_local"]
            mine = (labels >= start) & (labels < start + 100)
            assert ((local >= 0) == mine).all()  # every positive of this rank kept, the others -1
            positives = int(labels[mine].unique().numel())
            assert got["cosine"].shape == (16, max(10, positives))
            rows = torch.nonzero(mine).squeeze(1)
            expected = (F.normalize(got["embeddings"][rows], dim=1) * weight[labels[rows]]).sum(1)
            assert torch.allclose(got["cosine"][rows, local[rows]], expected, atol=1e-6)
