"""`l4p demo`: shipped weights by default, the same scores on every run, prediction beside ground truth."""

import re

from l4p.cli import main


def _scores(capsys, out_dir, *extra):
    assert main(["demo", "--out", str(out_dir), "--grid", "2", "--quiet", *extra]) == 0
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith("  ") and re.search(r"\d", line)]
    return text, lines


def test_demo_defaults_to_the_shipped_weights_and_repeats_its_scores(tmp_path, capsys):
    text, first = _scores(capsys, tmp_path / "a")
    assert "l4p_synthetic_s (shipped weights)" in text and "RANDOM" not in text
    assert any(line.lstrip().startswith("depth") for line in first) and len(first) >= 5
    _, second = _scores(capsys, tmp_path / "b")
    assert first == second  # deterministic: same clip, same weights, same scores
    assert (tmp_path / "a" / "compare.mp4").stat().st_size > 0


def test_demo_random_is_seeded_and_says_so(tmp_path, capsys):
    text, first = _scores(capsys, tmp_path / "a", "--random")
    assert "RANDOM WEIGHTS" in text
    _, second = _scores(capsys, tmp_path / "b", "--random")
    assert first == second
