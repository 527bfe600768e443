from facebone.experiment import tomlio


def test_dumps_round_trips_experiment_shapes():
    data = {
        "experiment": {"name": "x y", "seed": 1},
        "data": {"train": "/data/ms1m", "image_size": 112, "synth": {"identities": 3}},
        "backbone": {"type": "iresnet50", "layers": [3, 4, 6, 3], "ratio": 0.8, "tiny": 1e-12, "flag": False},
        "eval": [{"type": "verification", "targets": ["lfw", "cfp_fp"]}, {"type": "ijb", "opts": {"a": 1}}],
        "weird key": {"quote\"d": "line\nbreak"},
    }
    text = tomlio.dumps(data)
    assert tomlio.loads(text) == data
    assert "[data.synth]" in text and text.count("[[eval]]") == 2
