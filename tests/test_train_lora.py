"""LoRA through peft: only the adapters train, save and resume (bit-exact on CPU); the KL
reference is the policy with its adapters off; `export merged` gives a plain transformers model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from rewardkit.cli import main as cli_main  # noqa: E402
from rewardkit.trainers import checkpoint, gdpo  # noqa: E402
from rewardkit.trainers.tiny_model import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")
LORA = {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj", "up_proj"]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def _settings(tiny: str, **more: object) -> dict:
    return {"model": tiny, "lora": LORA, "lr": 1e-2, "progress": False, "eval_every": 0, **more}


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _without_times(m: dict) -> dict:
    return {k: v for k, v in m.items() if not k.startswith("time/")}


def test_only_adapters_train_and_a_checkpoint_holds_only_them(tiny: str, tmp_path: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    run = gdpo.setup(DEMO, overrides=_settings(tiny, output_dir=str(tmp_path / "run")))
    trainable = [n for n, p in run.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert run.ref_model is None  # the KL reference is the base under the adapters: no second copy
    for _ in range(2):
        gdpo.train_step(run)
    saved = gdpo.save_checkpoint(run) / "model"
    assert (saved / "adapter_config.json").is_file() and not (saved / "model.safetensors").exists()
    adapters = load_file(saved / "adapter_model.safetensors")
    assert adapters and all("lora_" in k for k in adapters)
    assert any(float(v.abs().sum()) > 0 for k, v in adapters.items() if "lora_B" in k)  # they moved

    base = AutoModelForCausalLM.from_pretrained(tiny)
    frozen = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
              for n, p in run.model.named_parameters() if "lora_" not in n}
    assert all(torch.equal(frozen[n], p) for n, p in base.named_parameters())


def test_reference_is_the_base_model_with_adapters_off(tiny: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    run = gdpo.setup(DEMO, overrides=_settings(tiny, output_dir=str(tmp_path / "run")))
    gdpo.train_step(run)  # the adapters are no longer zero
    rows = run.rows[:2]
    rollouts = gdpo.generate(run, rows, 3, seed=1)
    batch = gdpo._batches(run, rollouts)[0]
    base = AutoModelForCausalLM.from_pretrained(tiny).eval()
    run.model.eval()  # no adapter dropout, so policy and base differ only by the adapters
    with torch.no_grad():
        ref = gdpo._reference_logprobs(run, batch)
        expected = gdpo.token_logprobs(base, batch, run.cfg.temperature)[0]
        policy = gdpo.token_logprobs(run.model, batch, run.cfg.temperature)[0]
    m = batch.mask.bool()
    assert torch.allclose(ref[m], expected[m], atol=1e-6)
    assert not torch.allclose(policy[m], expected[m], atol=1e-4)


def test_lora_resume_matches_straight_run_exactly(tiny: str, tmp_path: Path) -> None:
    # KL to the adapters-off base, two updates per batch, gradient accumulation, adapter dropout.
    settings = _settings(tiny, steps=4, checkpoint_every=2, keep_checkpoints=None, updates_per_batch=2,
                         grad_accum=2, lr_schedule="cosine", warmup_steps=1)
    straight = gdpo.train(DEMO, overrides={**settings, "output_dir": str(tmp_path / "straight")})
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(straight / "checkpoints" / "step-000002", resumed_dir / "checkpoints" / "step-000002")
    gdpo.train(DEMO, resume=str(resumed_dir), overrides=settings)

    a, b = _metrics(straight), _metrics(resumed_dir)
    assert [m["step"] for m in b] == [3, 4]
    assert [_without_times(m) for m in a[2:]] == [_without_times(m) for m in b]
    assert all(m["kl"] == m["kl"] for m in a)  # the KL term ran (NaN when it is off)
    from safetensors.torch import load_file

    wa = load_file(checkpoint.find(straight) / "model" / "adapter_model.safetensors")
    wb = load_file(checkpoint.find(resumed_dir) / "model" / "adapter_model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resuming_adapters_without_lora_fails_clearly(tiny: str, tmp_path: Path) -> None:
    run = gdpo.train(DEMO, overrides=_settings(tiny, steps=1, output_dir=str(tmp_path / "run")))
    with pytest.raises(gdpo.TrainSetupError, match="LoRA adapters"):
        gdpo.setup(DEMO, resume=str(run), overrides={"model": tiny, "progress": False})


def test_export_merged_loads_with_plain_transformers(tiny: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    run_dir = gdpo.train(DEMO, overrides=_settings(tiny, steps=2, output_dir=str(tmp_path / "run")))
    out = tmp_path / "merged"
    assert cli_main(["export", "merged", str(run_dir), "-o", str(out)]) == 0
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not hasattr(merged, "peft_config")

    run = gdpo.setup(DEMO, resume=str(run_dir), overrides=_settings(tiny, steps=2))
    run.model.eval()
    ids = torch.tensor([[1, 9, 12, 15, 20, 7]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, run.model(input_ids=ids).logits, atol=1e-5)
    assert (out / "tokenizer_config.json").is_file()


def test_export_merged_of_a_full_run_is_its_checkpoint_model(tiny: str, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    run_dir = gdpo.train(DEMO, overrides={"model": tiny, "steps": 1, "progress": False, "eval_every": 0,
                                          "output_dir": str(tmp_path / "run")})
    out = tmp_path / "merged"
    assert cli_main(["export", "merged", str(run_dir), "-o", str(out)]) == 0
    saved = load_file(checkpoint.find(run_dir) / "model" / "model.safetensors")
    exported = load_file(out / "model.safetensors")
    assert saved.keys() == exported.keys() and all(torch.equal(saved[k], exported[k]) for k in saved)


def test_export_of_a_folder_without_checkpoints_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["export", "merged", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
