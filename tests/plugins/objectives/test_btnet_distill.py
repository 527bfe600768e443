"""``btnet_distill``: every branch on the downscaled batch, CE + 0.5 x (MSE implant map + MSE embedding)
towards the frozen trunk, against the contract of COMMON.md with stand-ins for the core's pieces."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facebone.contracts import Batch
from facebone.model.build import build_backbone
from facebone.model.face_model import FaceModel
from facebone.plugin.options import build_options

torch.set_num_threads(1)


def Classifier(classes: int, dim: int):  # type: ignore[no-untyped-def]  # noqa: N802
    """The core's classifier (one process: plain cosines and cross-entropy)."""
    from facebone.train.classifier import Classifier as CoreClassifier

    return CoreClassifier(classes, dim, seed=0)


class Identity(torch.nn.Module):
    """The cartesian warp."""

    def forward(self, images, rois=None):  # type: ignore[no-untyped-def]
        return images


def objective(**options):  # type: ignore[no-untyped-def]
    from facebone.plugins.objectives.btnet import BTNetDistillOptions, build_btnet_distill

    opts, problems = build_options(BTNetDistillOptions, {"teacher": "runs/trunk", **options}, "[objective]")
    assert not problems, problems
    return build_btnet_distill(opts)


@pytest.fixture
def parts():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    trunk = build_backbone("iresnet18", {"width": 8}, embedding_size=16).train()
    with torch.no_grad():
        trunk(torch.rand(16, 3, 112, 112) * 2 - 1)  # BN statistics
    from facebone.train.teacher import FrozenTeacher

    teacher = FrozenTeacher(FaceModel(Identity(), trunk), 112, "trunk")
    student = build_backbone("btnet18", {"width": 8}, embedding_size=16)
    student.load_state_dict(student.complete_state_dict(trunk.state_dict()), strict=True)
    model = FaceModel(Identity(), student).train()
    for name, p in model.named_parameters():  # stage 2: the trunk is frozen
        if not name.startswith("backbone.branches."):
            p.requires_grad_(False)
    batch = Batch(torch.rand(6, 3, 112, 112) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2]))
    return teacher, model, Classifier(3, 16).requires_grad_(False), batch


def test_terms_per_branch_and_their_values(parts):  # type: ignore[no-untyped-def]
    teacher, model, classifier, batch = parts
    head = lambda cosine, labels, norms: 16.0 * cosine  # noqa: E731
    terms = objective()(batch, model=model, classifier=classifier, head=head, teacher=teacher)
    assert sorted(terms) == sorted(f"{r}/{k}" for r in (28, 14, 7) for k in ("ce", "feature", "embedding"))
    # the 14 branch by hand: downscale (bilinear, no antialias), implant = layer3.0 output
    student = model.backbone
    x14 = F.interpolate(batch.images, size=(14, 14), mode="bilinear", align_corners=False, antialias=False)
    model_state = {k: v.clone() for k, v in student.state_dict().items()}
    emb, feat = student(x14, branch=14, implant=True)
    student.load_state_dict(model_state)  # undo the extra train-mode BN update
    with torch.no_grad():
        trunk = teacher.model.backbone
        x = trunk.prelu(trunk.bn1(trunk.conv1(batch.images)))
        x = trunk.layer2(trunk.layer1(x))
        t_feat = trunk.layer3[0](x)
        t_emb = teacher(batch.images)
    torch.testing.assert_close(terms["14/feature"], 0.5 * F.mse_loss(feat, t_feat), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["14/embedding"], 0.5 * F.mse_loss(emb, t_emb), rtol=1e-4, atol=1e-6)
    cos, _, _ = classifier(emb, batch.labels)
    torch.testing.assert_close(terms["14/ce"], F.cross_entropy(16 * cos, batch.labels), rtol=1e-4, atol=1e-6)


def test_only_branches_learn_and_the_teacher_is_untouched(parts):  # type: ignore[no-untyped-def]
    teacher, model, classifier, batch = parts
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    terms = objective(branches=[7], kd_weight=1.0)(batch, model=model, classifier=classifier,
                                                    head=lambda c, l, n: 16 * c, teacher=teacher)
    assert sorted(terms) == ["7/ce", "7/embedding", "7/feature"]
    sum(terms.values()).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(n.startswith("backbone.branches.7.") for n in grads)
    assert any(".trunk_bn." in n for n in grads)  # the branch's own trunk BN affine trains
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_validation():
    from facebone.plugins.objectives.btnet import BTNetDistillOptions, check_btnet_distill

    opts, _ = build_options(BTNetDistillOptions, {"teacher": "x", "branches": [14, 56]}, "[objective]")
    assert check_btnet_distill(opts, {"backbone": {"type": "iresnet50"}})[0].startswith("btnet_distill trains")
    assert "[56] are not branches" in check_btnet_distill(opts, {"backbone": {"type": "btnet50",
                                                                             "branches": [28, 14, 7]}})[0]
    _, problems = build_options(BTNetDistillOptions, {"teacher": " "}, "[objective]")
    assert "key 'teacher' must name" in problems[0]
