"""Messages print literally: a hint with brackets (`rewardkit[train]`) is not eaten as markup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_without_torch_names_the_extra_with_its_brackets() -> None:
    code = ("import sys; sys.modules['torch'] = None; from rewardkit.cli import main; "
            "sys.exit(main(['train', 'specs/demo.yaml']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    assert "training needs torch and transformers: pip install 'rewardkit[train]'" in out.stderr
