"""`facebone compare-complexity`."""
from __future__ import annotations

import json

from facebone.model.build import build_backbone
from facebone.cli import main
from facebone.model.complexity import count


def test_table_and_json(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compare-complexity", "mobilefacenet", "iresnet3?", "iresnet1?", "--set", "backbone.width=8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["backbones"]) == ["mobilefacenet", "iresnet34", "iresnet18"]  # as asked
    assert data["backbones"]["iresnet18"] == count(build_backbone("iresnet18", {"width": 8}))
    assert data["backbones"]["mobilefacenet"]["flops"] == 2 * data["backbones"]["mobilefacenet"]["macs"]
    assert main(["compare-complexity", "mobilefacenet"]) == 0
    out = capsys.readouterr().out
    assert "FLOPs = 2 x MACs" in out and "2.06M" in out and "0.438G" in out


def test_unknown_name(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compare-complexity", "resnet50"]) == 2
    assert "did you mean 'iresnet50'" in capsys.readouterr().err
