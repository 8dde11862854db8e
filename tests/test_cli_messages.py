"""CLI messages a new user meets: printed literally (a hint with brackets, `rewardkit[train]`, is
not eaten as markup), with did-you-mean for `--set`, and a hint for double-quoted regexes."""

from __future__ import annotations

import json
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


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from rewardkit import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"rewardkit {__version__}\n"


def test_verifiers_name_shows_one_with_the_choices_of_each_literal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verifiers", "length_limit", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert list(docs) == ["length_limit"]
    unit = next(a for a in docs["length_limit"]["args"] if a["name"] == "unit")
    assert unit["type"] == "'tokens' | 'words' | 'characters'"
    assert unit["choices"] == ["tokens", "words", "characters"] and unit["default"] == "tokens"
    buffer = next(a for a in docs["length_limit"]["args"] if a["name"] == "buffer")
    assert buffer["type"] == "int | None" and buffer["choices"] is None


def test_the_python_verifier_has_its_own_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verifiers", "python", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["python"]
    assert "module:function" in info["doc"] and "Base class" not in info["description"]


def test_verifiers_with_an_unknown_name_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verifiers", "exact_mtch"]) == 1
    assert "unknown verifier 'exact_mtch'; did you mean 'exact_match'?" in capsys.readouterr().err
