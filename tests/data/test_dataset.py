"""Training Dataset and loader: values, augmentation, sampling, folders, corrupt records."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facebone.errors import DataError
from facebone.data import make_loader, open_training_set
from facebone.data.dataset import Degradation
from facebone.data.pack import write_im2rec_pack, write_insightface_pack


@pytest.fixture
def pack_dir(tmp_path, images):
    samples, _ = images
    write_insightface_pack(tmp_path / "p", samples, image_size=(12, 10))
    return tmp_path / "p"


def test_items_are_normalised_rgb_and_labels(pack_dir, images):
    _, arrs = images
    ds = open_training_set(pack_dir, image_size=(12, 10), hflip=False)
    assert len(ds) == 12 and ds.num_classes == 4
    x, y = ds[4]
    assert x.dtype == torch.float32 and x.shape == (3, 12, 10) and y == 1
    expected = (torch.from_numpy(arrs[4]).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
    assert torch.allclose(x, expected, atol=1e-6)


def test_flip_follows_seed_and_resize(pack_dir, images):
    _, arrs = images
    ds = open_training_set(pack_dir, image_size=(12, 10), hflip=True)
    a, _ = ds[(2, 0)]
    b, _ = ds[(2, 1)]
    assert torch.equal(a.flip(-1), b)
    small = open_training_set(pack_dir, image_size=6)
    assert small[(0, 0)][0].shape == (3, 6, 6)


def test_degradation_changes_detail_not_size(pack_dir):
    deg = Degradation(sizes=(4,), p=1.0, interpolation="bilinear")
    ds = open_training_set(pack_dir, image_size=(12, 10), hflip=False, degradation=deg)
    plain = open_training_set(pack_dir, image_size=(12, 10), hflip=False)
    x, _ = ds[(0, 0)]
    assert x.shape == (3, 12, 10) and not torch.equal(x, plain[(0, 0)][0])
    with pytest.raises(DataError, match="interpolation 'cubicle' unknown"):
        Degradation(sizes=(4,), p=1.0, interpolation="cubicle")


def test_loader_is_deterministic_epoch_seeded_and_worker_independent(pack_dir):
    ds = open_training_set(pack_dir, image_size=(12, 10))
    a = make_loader(ds, batch_size=4, seed=3)
    b = make_loader(ds, batch_size=4, seed=3, num_workers=2, persistent_workers=False)
    ea = [(x.clone(), y.clone()) for x, y in a]
    eb = list(b)
    assert len(ea) == 3 and all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(ea, eb))
    a.sampler.set_epoch(1)
    e1 = [y for _, y in a]
    assert not all(torch.equal(p[1], q) for p, q in zip(ea, e1))
    c = make_loader(ds, batch_size=4, seed=4)
    assert not all(torch.equal(p[1], q[1]) for p, q in zip(ea, c))


def test_ranks_partition_the_epoch(pack_dir):
    from facebone.data.loader import EpochSampler

    parts = [EpochSampler(10, seed=1, rank=r, world_size=3, drop_last=True).indices()[0] for r in range(3)]
    allidx = np.concatenate(parts)
    assert [len(p) for p in parts] == [3, 3, 3] and len(set(allidx.tolist())) == 9
    padded = [EpochSampler(10, seed=1, rank=r, world_size=3, drop_last=False).indices()[0] for r in range(3)]
    assert [len(p) for p in padded] == [4, 4, 4] and set(np.concatenate(padded).tolist()) == set(range(10))


def test_image_folder_training_set(tmp_path, images):
    samples, arrs = images
    for k, (data, lab) in enumerate(samples):
        d = tmp_path / "f" / f"person_{'abcd'[lab]}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{k:03d}.png").write_bytes(data)
    ds = open_training_set(tmp_path / "f", image_size=(12, 10), hflip=False)
    assert len(ds) == 12 and ds.num_classes == 4 and ds.labels.tolist() == [s[1] for s in samples]
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty: empty image folder: 1 sub-folders but no images"):
        open_training_set(tmp_path / "empty", image_size=8)
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match=r"none: empty image folder: no sub-folders"):
        open_training_set(tmp_path / "none", image_size=8)


def test_record_that_is_not_an_image(tmp_path, images):
    samples, _ = images
    bad = list(samples)
    bad[5] = (b"this is not an image", bad[5][1])
    write_im2rec_pack(tmp_path / "b", bad)
    ds = open_training_set(tmp_path / "b", image_size=(12, 10))
    with pytest.raises(DataError, match=r"train\.rec: record key 5 at byte offset \d+: not a decodable image"):
        ds[5]
    ds = open_training_set(tmp_path / "b", image_size=(12, 10), skip_corrupt=True)
    loader = make_loader(ds, batch_size=4, shuffle=False, drop_last=False)
    n = sum(len(y) for _, y in loader)
    assert n == 11 and loader.skipped_last_epoch == 1 and ds.corrupt_count == 1


def test_missing_path_and_rec_without_idx(tmp_path, images):
    with pytest.raises(DataError, match="training data not found"):
        open_training_set(tmp_path / "nope", image_size=8)
    samples, _ = images
    write_im2rec_pack(tmp_path / "x", samples)
    (tmp_path / "x" / "train.idx").unlink()
    with pytest.raises(DataError, match=r"train\.idx: index file missing"):
        open_training_set(tmp_path / "x", image_size=8)


def test_worker_errors_are_unwrapped_to_their_one_line():
    from facebone.data.loader import unwrap_worker_error
    from facebone.errors import ConfigError, DataError

    wrapped = DataError("Caught DataError in DataLoader worker process 1.\nOriginal Traceback (most recent call last):\n"
                        '  File "x.py", line 3, in f\n    raise DataError(...)\n'
                        "facebone.errors.DataError: p/train.rec: record key 7 at byte offset 12: not a decodable image\n")
    got = unwrap_worker_error(wrapped)
    assert type(got) is DataError and str(got) == "p/train.rec: record key 7 at byte offset 12: not a decodable image"
    plain = DataError("nothing to unwrap")
    assert unwrap_worker_error(plain) is plain
    multi = ConfigError("Caught ConfigError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                        "facebone.errors.ConfigError: 2 problems:\n  - a\n  - b\n")
    assert unwrap_worker_error(multi).problems == ["a", "b"]


def test_worker_error_through_a_real_loader(tmp_path, images):
    from facebone.data.pack import write_im2rec_pack

    samples = images[0][:4]
    write_im2rec_pack(tmp_path / "b", [samples[0], (b"\x89PNG broken", 0), samples[2], (b"junk", 1)])
    ds = open_training_set(tmp_path / "b", image_size=(12, 10))
    loader = make_loader(ds, batch_size=2, num_workers=1)
    with pytest.raises(DataError) as info:
        list(loader)
    assert str(info.value).startswith(f"{tmp_path / 'b' / 'train.rec'}: record key ")
    assert "Caught" not in str(info.value) and "\n" not in str(info.value)


def test_folder_reports_what_it_skipped(tmp_path, images):
    from facebone.data.folder import ImageFolder

    (tmp_path / "f" / "a" / "inner").mkdir(parents=True)
    (tmp_path / "f" / "b").mkdir()
    (tmp_path / "f" / "a" / "0.png").write_bytes(images[0][0][0])
    (tmp_path / "f" / "b" / "0.png").write_bytes(images[0][1][0])
    (tmp_path / "f" / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "f" / "b" / "notes.txt").write_text("x")
    (tmp_path / "f" / "README").write_text("x")
    (tmp_path / "f" / "a" / ".DS_Store").write_text("x")
    src = ImageFolder(tmp_path / "f")
    assert len(src) == 2
    assert src.skipped == {"nested folder": 1, "broken link": 1, "non-image file": 1, "file outside a class folder": 1}
    [note] = src.notes
    assert note.startswith(f"{tmp_path / 'f'}: skipped 1 broken link (e.g. ") and "1 nested folder" in note


def test_class_counts_are_checked_against_the_images(tmp_path, images):
    from facebone.data.pack import write_im2rec_pack

    (tmp_path / "f" / "0").mkdir(parents=True)
    (tmp_path / "f" / "99").mkdir()
    (tmp_path / "f" / "0" / "a.png").write_bytes(images[0][0][0])
    (tmp_path / "f" / "99" / "a.png").write_bytes(images[0][1][0])
    with pytest.raises(DataError, match=r"f/99: class folder name: label 99 means 100 classes, more than the 2 images"):
        open_training_set(tmp_path / "f", image_size=8)
    write_im2rec_pack(tmp_path / "p", [(images[0][0][0], 0), (images[0][1][0], 5000)])
    with pytest.raises(DataError, match=r"record key 1 at byte offset \d+: label 5000 means 5001 classes"):
        open_training_set(tmp_path / "p", image_size=8)
    (tmp_path / "p" / "property").write_text("70000,12,10\n")
    with pytest.raises(DataError, match="property: declares 70000 classes but the data holds only 2 images"):
        open_training_set(tmp_path / "p", image_size=8)


def test_pack_size_comes_from_the_images_and_a_wrong_property_is_noted(tmp_path, images):
    from facebone.data.pack import open_pack, write_im2rec_pack

    write_im2rec_pack(tmp_path / "p", images[0][:4], image_size=112)
    pack = open_pack(tmp_path / "p")
    assert pack.image_size == (12, 10) and pack.property_size == (112, 112)
    assert pack.notes == [f"{tmp_path / 'p' / 'property'}: says 112x112 pixels but the images are 12x10 "
                          f"(first image, {pack.where(0)}); using 12x10"]
