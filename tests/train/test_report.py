"""The progress line of rank 0 and its TensorBoard scalars."""
import io

from facebone.rundir import RunDir
from facebone.train import report


def test_progress_line_shows_every_term_lr_epoch_step_and_the_fp16_scale(tmp_path, monkeypatch):
    stream = io.StringIO()
    real = report.Progress
    monkeypatch.setattr(report, "Progress", lambda *a, **k: real(*a, **{**k, "stream": stream, "interval": 0}))
    reporter = report.Reporter(RunDir(tmp_path), main=True, total_samples=256, show_progress=True, log_every=1)
    reporter.step(step=1, last_step=2, epoch=0, samples=128, terms={"ce": 2.5, "mag": 0.25}, lr=0.1,
                  grad_scale=65536.0)
    reporter.close()
    line = stream.getvalue().strip().splitlines()[-1]
    assert "50.0% 128/256" in line and "samples/s" in line and "<" in line  # rate and ETA
    for part in ("loss=2.75", "ce=2.5", "mag=0.25", "lr=0.1", "epoch=0", "step=1", "scale=6.554e+04"):
        assert part in line, line
    assert any((tmp_path / "tensorboard").iterdir())


def test_other_ranks_report_nothing(tmp_path):
    reporter = report.Reporter(RunDir(tmp_path), main=False, total_samples=256, show_progress=True, log_every=1)
    reporter.step(step=1, last_step=2, epoch=0, samples=128, terms={"ce": 2.5}, lr=0.1, grad_scale=None)
    reporter.close()
    assert not (tmp_path / "tensorboard").exists()
