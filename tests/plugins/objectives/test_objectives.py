"""The built-in objectives against their formulas, and teachers loaded frozen from a run directory."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facebone.contracts import Batch
from facebone.errors import DataError
from facebone.experiment import tomlio
from facebone.experiment.config import validate
from facebone.model.build import build_model
from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options
from facebone.train.classifier import Classifier
from facebone.train.teacher import FrozenTeacher, load_teacher
from facebone.weights.checkpoint import save_checkpoint

PLUGINS = load_plugins()


def objective(name, **opts):
    comp = PLUGINS.get("objective", name)
    options, problems = build_options(comp.options, opts, name)
    assert problems == [], problems
    return comp.factory(options, num_classes=6, embedding_size=16, seed=0)


def experiment(tmp_path, image_size=32):
    raw = {"experiment": {"name": "teacher", "output_dir": str(tmp_path)},
           "data": {"train": str(tmp_path), "image_size": image_size},
           "backbone": {"type": "iresnet18", "width": 8, "embedding_size": 16},
           "head": {"type": "cosface", "scale": 16.0}}
    return validate(raw, source="test", plugins=PLUGINS)


class ScaleHead(nn.Module):
    """logits = 8 cos, with a loss term on the norms (as MagFace's regulariser)."""

    def forward(self, cosine, labels, norms):
        return cosine * 8.0

    def loss_terms(self, norms):
        return {"norm_reg": 0.01 * norms.mean()}


@pytest.fixture
def parts(tmp_path):
    torch.manual_seed(0)
    model = build_model(experiment(tmp_path))
    teacher = FrozenTeacher(copy.deepcopy(model), 32, "test")
    with torch.no_grad():  # a teacher that differs from the student
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    classifier = Classifier(6, 16, seed=0)
    batch = Batch(torch.rand(6, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3, 4, 5]))
    return model, teacher, classifier, batch


def reference_ce(model, classifier, head, batch):
    emb = model(batch.images)
    cosine = F.normalize(emb) @ F.normalize(classifier.weight).t()
    return F.cross_entropy(head(cosine, batch.labels, emb.norm(dim=1, keepdim=True)), batch.labels), emb


def test_classification_is_cross_entropy_plus_the_heads_terms(parts):
    model, _, classifier, batch = parts
    model.eval()  # batch norm by running statistics: the same numbers on every call
    head = ScaleHead()
    terms = objective("classification")(batch, model=model, classifier=classifier, head=head)
    ce, emb = reference_ce(model, classifier, head, batch)
    assert set(terms) == {"ce", "norm_reg"}
    assert terms["ce"].item() == pytest.approx(ce.item(), rel=1e-5)
    assert terms["norm_reg"].item() == pytest.approx(0.01 * emb.norm(dim=1).mean().item(), rel=1e-5)


def test_distill_terms_are_weighted_ce_and_mse_to_the_teacher(parts):
    model, teacher, classifier, batch = parts
    model.eval()
    head = ScaleHead()
    distill = objective("distill", teacher="t", ce_weight=0.5, embedding_weight=2.0, feature_weight=3.0,
                        features=["backbone.layer2.0", "backbone.layer1=backbone.layer1"])
    terms = distill(batch, model=model, classifier=classifier, head=head, teacher=teacher)
    assert set(terms) == {"ce", "norm_reg", "embedding_mse", "feature_mse/backbone.layer2.0",
                          "feature_mse/backbone.layer1"}
    ce, emb = reference_ce(model, classifier, head, batch)
    inner = teacher.model
    with torch.no_grad():
        t_emb = inner(batch.images)
        x = inner.backbone.prelu(inner.backbone.bn1(inner.backbone.conv1(inner.warp(batch.images))))
        t_l1 = inner.backbone.layer1(x)
        t_l2 = inner.backbone.layer2[0](t_l1)
        s = model.backbone
        s_l1 = s.layer1(s.prelu(s.bn1(s.conv1(model.warp(batch.images)))))
        s_l2 = s.layer2[0](s_l1)
    assert terms["ce"].item() == pytest.approx(0.5 * ce.item(), rel=1e-5)
    assert terms["embedding_mse"].item() == pytest.approx(2.0 * F.mse_loss(emb, t_emb).item(), rel=1e-5)
    assert terms["feature_mse/backbone.layer1"].item() == pytest.approx(3.0 * float(F.mse_loss(s_l1, t_l1)), rel=1e-5)
    assert terms["feature_mse/backbone.layer2.0"].item() == pytest.approx(3.0 * float(F.mse_loss(s_l2, t_l2)),
                                                                        rel=1e-5)
    sum(terms.values()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert model.backbone.conv1.weight.grad is not None


def test_distill_leaves_out_zero_weights_and_may_normalise(parts):
    model, teacher, classifier, batch = parts
    model.eval()
    terms = objective("distill", teacher="t", ce_weight=0.0, normalize=True)(
        batch, model=model, classifier=classifier, head=ScaleHead(), teacher=teacher)
    assert set(terms) == {"embedding_mse"}
    expected = F.mse_loss(F.normalize(model(batch.images)), F.normalize(teacher(batch.images)))
    assert terms["embedding_mse"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("opts, message", [({"teacher": " "}, "key 'teacher' must name"),
                                           ({"teacher": "t", "embedding_weight": -1.0}, "must be >= 0"),
                                           ({"teacher": "t", "features": ["a=b=c"]}, "is not 'name' or")])
def test_distill_options_are_checked(opts, message):
    comp = PLUGINS.get("objective", "distill")
    _, problems = build_options(comp.options, opts, "x [objective]")
    assert problems and message in problems[0]


def test_a_teacher_loads_frozen_and_in_eval_mode_from_a_run_directory(tmp_path):
    exp = experiment(tmp_path)
    model = build_model(exp)
    run = tmp_path / "trunk"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(tomlio.dumps(exp.resolved()))
    save_checkpoint(run / "checkpoints" / "last.safetensors", {"model": model}, {"backbone": "iresnet18"})
    for source in (run, run / "checkpoints" / "last.safetensors"):
        teacher = load_teacher(str(source), plugins=PLUGINS)
        teacher.train()
        assert not teacher.training and not teacher.model.training
        assert not any(p.requires_grad for p in teacher.parameters())
        images = torch.rand(2, 3, 32, 32) * 2 - 1
        assert torch.equal(teacher(images), model.eval()(images))
        small = F.interpolate(images, size=(16, 16), mode="bilinear", antialias=True)
        assert teacher(small).shape == (2, 16)  # resized to the teacher's 32 px
    (run / "config.toml").unlink()
    with pytest.raises(DataError, match="does not say which model it holds"):
        load_teacher(str(run / "checkpoints" / "last.safetensors"), plugins=PLUGINS)
