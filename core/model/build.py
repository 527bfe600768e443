"""Build the model of an experiment, or a registered backbone by name (commands).

Both go through :func:`facebone.plugin.build.build_component`, so every build checks the
component's contract. ``build_backbone("iresnet50", {"pooling": "gwp"}, embedding_size=512,
image_size=112)`` validates the options exactly like an experiment's ``[backbone]`` table does.
"""
from __future__ import annotations

from typing import Any

from facebone.errors import ConfigError
from facebone.model.face_model import FaceModel
from facebone.plugin.build import build_component


def build_model(exp: Any) -> FaceModel:
    """Warp and backbone of a validated experiment, as one :class:`FaceModel`."""
    size = exp.data.image_size
    warp = exp.warp.build(image_size=size)
    backbone = exp.backbone.build(embedding_size=exp.embedding_size, image_size=size)
    return FaceModel(warp, backbone)


def build_backbone(name: str, table: dict[str, Any] | None = None, *, embedding_size: int = 512,
                   image_size: int = 112, plugins: Any = None) -> Any:
    """The backbone ``name`` built with options ``table`` (validated); ConfigError on bad options."""
    from facebone.plugin.discovery import get_plugins
    from facebone.plugin.options import build_options

    comp = (plugins or get_plugins()).get("backbone", name)
    options, problems = build_options(comp.options, dict(table or {}), f"[backbone] type = {name!r}")
    if problems:
        raise ConfigError(problems)
    return build_component(comp, options, embedding_size=embedding_size, image_size=image_size)


def build_for_state(name: str, table: dict[str, Any], state: dict[str, Any], *, embedding_size: int | None = None,
                    image_size: int = 112) -> Any:
    """Build backbone ``name`` with the embedding size found in ``state`` (unless given)."""
    from facebone.weights.keys import embedding_size_of

    model = build_backbone(name, table, embedding_size=embedding_size or 512, image_size=image_size)
    found = embedding_size or embedding_size_of(state, model.state_dict()) or 512
    if found != model.embedding_size:
        model = build_backbone(name, table, embedding_size=found, image_size=image_size)
    return model
