"""CLI messages a new user meets: printed literally (a hint with brackets, `rewardkit[train]`, is
not eaten as markup), with did-you-mean for `--set`, and a hint for double-quoted regexes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_train_without_torch_names_the_extra_with_its_brackets() -> None:
    code = ("import sys; sys.modules['torch'] = None; from rewardkit.cli import main; "
            "sys.exit(main(['train', 'specs/demo.yaml']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    assert "training needs torch and transformers: pip install 'rewardkit[train]'" in out.stderr


def test_set_with_an_unknown_key_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["train", str(ROOT / "specs" / "demo.yaml"), "--set", "stpes=3"]) == 1
    err = capsys.readouterr().err
    assert "train.stpes: unknown key 'stpes'; did you mean 'steps'? (valid keys: model, " in err
    assert "Traceback" not in err


def test_a_double_quoted_regex_with_backslash_s_gets_a_single_quote_hint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "dq.yaml"
    spec.write_text('version: 1\nname: x\nrewards:\n  - name: f\n    verifier: format_regex\n'
                    '    args: {pattern: "<a>\\s*</a>"}\n')
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:6:26: invalid YAML: found unknown escape character 's' (in a double-quoted YAML string a " \
           "backslash starts an escape; write regular expressions in single quotes, e.g. '\\s+'" in err
