"""Weights & Biases logging, for real, in W&B's offline mode (no network, no account).

The offline run file is read back here: W&B's record log (LevelDB-log framing: 32 KiB blocks,
7-byte record headers) of protobuf `Record`s, parsed with W&B's own protobuf classes.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardkit.trainers import gdpo
from rewardkit.trainers.data import TrainSetupError
from rewardkit.trainers.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "specs" / "demo.yaml")


def _records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"not a W&B run file: {data[:8]!r}"
    pos, block, chunks, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # a whole record
            chunks.append(payload)
        elif kind == 2:  # first piece
            pending = payload
        elif kind == 3:  # middle piece
            pending += payload
        elif kind == 4:  # last piece
            chunks.append(pending + payload)
    records = []
    for raw in chunks:
        record = pb.Record()
        record.ParseFromString(raw)
        records.append(record)
    return records


def _finished_records(path: Path, timeout: float = 300) -> list[Any]:
    """The run file's records once W&B has written its `exit` record. `wandb.finish()` can return
    while W&B's own service process is still writing the file's tail; on a busy machine a read
    right away missed the last step, so wait for the event that closes the file."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = _records(path)
        except Exception:  # noqa: BLE001 - a record cut off mid-write: not finished yet
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{path}: W&B never wrote its exit record"
        time.sleep(0.2)


def _history(path: Path) -> dict[int, dict[str, Any]]:
    steps = {}
    for record in _finished_records(path):
        if record.WhichOneof("record_type") == "history":
            items = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item}
            steps[int(items["_step"])] = items
    return steps


def test_wandb_gets_every_step_and_resume_continues_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed: the trainer logs JSONL (and TensorBoard) only")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    tiny = str(build_tiny_model(tmp_path / "tiny"))
    settings = {"model": tiny, "output_dir": str(tmp_path / "run"), "progress": False, "tensorboard": False,
                "wandb_project": "rewardkit-test", "steps": 2}
    out = gdpo.train(DEMO, overrides=settings)
    gdpo.train(DEMO, resume=str(out), overrides={**settings, "steps": 3})

    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    run_id = (out / "wandb_run_id").read_text()
    files = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and all(f.name == f"run-{run_id}.wandb" for f in files)  # one W&B run, twice
    history = {**_history(files[0]), **_history(files[1])}
    assert sorted(history) == [1, 2, 3]
    for m in logged:
        for key in ("reward/format/mean", "reward/short/gated_share", "adv/distinct", "time/update", "lr"):
            assert history[m["step"]][key] == pytest.approx(m[key]), (m["step"], key)

    gdpo.train(DEMO, overrides={**settings, "steps": 1})  # a fresh run in the same folder: a new W&B run
    assert (out / "wandb_run_id").read_text() != run_id


def test_wandb_asked_for_but_missing_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(TrainSetupError, match=r"train.wandb_project is set but wandb is not installed"):
        gdpo.setup(DEMO, overrides={"model": "./nowhere", "wandb_project": "x"})
