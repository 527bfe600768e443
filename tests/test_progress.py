import io

from facebone.progress import Progress, format_duration


def test_progress_line_shows_rate_eta_and_values():
    out = io.StringIO()
    p = Progress(100, "train", unit="samples", stream=out, interval=0.0)
    p.update(25, loss=1.23456, lr=0.1)
    line = p.line()
    assert "25.0% 25/100" in line and "samples/s" in line and "loss=1.235" in line and "lr=0.1" in line
    assert "<" in line  # elapsed<eta
    p.close()
    assert out.getvalue().count("\n") >= 2  # one line per update when not a terminal, plus the final one


def test_format_duration():
    assert format_duration(65) == "01:05"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(float("nan")) == "?"
