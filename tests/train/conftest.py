"""Small data sets and experiments for the training-engine tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from facebone.data import generate_synthetic


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """72 training images of 12 identities at 32 px, plus a held-out verification set."""
    root = tmp_path_factory.mktemp("tiny_set") / "data"
    generate_synthetic(root, identities=12, images_per_identity=6, holdout_identities=6, pairs=40, image_size=32,
                       seed=1, progress=False)
    return root


@pytest.fixture(scope="session")
def wide_set(tmp_path_factory) -> Path:
    """400 training images of 40 identities at 16 px (no held-out pairs worth scoring)."""
    root = tmp_path_factory.mktemp("wide_set") / "data"
    generate_synthetic(root, identities=40, images_per_identity=10, holdout_identities=4, pairs=8, image_size=16,
                       seed=2, progress=False)
    return root


@pytest.fixture(scope="session")
def third_party_site(tmp_path_factory) -> Path:
    """A site directory with the 'thirdnet' backbone (conv + linear, no batch norm) for subprocesses."""
    from fb_testing import make_third_party

    site = tmp_path_factory.mktemp("site")
    make_third_party(site)
    return site


@pytest.fixture(scope="session")
def plugins_with_thirdnet(third_party_site):  # type: ignore[no-untyped-def]
    """The installed plugins plus 'thirdnet', for in-process runs."""
    from importlib import metadata

    from facebone.plugin.discovery import load_plugins

    sys.path.insert(0, str(third_party_site))
    dists = metadata.distributions(path=[str(third_party_site)])
    extra = [ep for d in dists for ep in d.entry_points if ep.group == "facebone"]
    return load_plugins(list(metadata.entry_points(group="facebone")) + extra)
