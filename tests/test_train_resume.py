"""biv.train.loop checkpoints: a run interrupted at any point and started again finishes with the
same bytes as an uninterrupted run (simulated crashes in-process, real SIGKILLs of `biv train`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import biv.train.loop
from biv.config.noise import resolve
from biv.data.prepared import train_labels, write
from biv.noise.files import write_draw_file
from biv.train.loop import train

OUTPUTS = ("metrics.csv", "predictions.csv")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_inputs(tmp_path: Path, n_train: int, n_test: int, images: int = 0) -> dict:
    """A prepared-data file (layout of biv.data.prepared) and a noise setting (layout of
    estimate_noise's params.json: heavy-tailed, gamma of shape 0.5); returns run parameters."""
    gen = torch.Generator().manual_seed(0)
    n = n_train + n_test
    if images:
        x = torch.randint(0, 256, (n, 3, images, images), generator=gen, dtype=torch.uint8)
        y = 30 + x.float().mean(dim=(1, 2, 3)) / 8
        x_mean, x_std = torch.full((3,), 0.5), torch.full((3,), 0.29)
    else:
        x = torch.randn(n, 5, generator=gen)
        y = 100 + 20 * torch.tanh(x @ torch.tensor([1.0, -0.5, 0.3, 0.2, 0.0]))
        x_mean, x_std = x[:n_train].mean(0), x[:n_train].std(0)
    y_train = y[:n_train]
    write(
        tmp_path / "data.npz",
        {
            "x_train": x[:n_train].clone(),
            "y_train": y_train.clone(),
            "x_test": x[n_train:].clone(),
            "y_test": y[n_train:].clone(),
            "x_mean": x_mean,
            "x_std": x_std,
            "y_mean": float(y_train.mean()),
            "y_std": float(y_train.std()),
            "meta": {"dataset": "toy"},
        },
    )
    setting = {
        "mode": "meanvar",
        "components": [{"distribution": "gamma", "mean": 40, "var": 3200}],
    }
    labels = train_labels(tmp_path / "data.npz")
    write_draw_file(tmp_path / "noise.npz", labels, resolve(setting).to_dict(), [11])
    return {
        "experiment": "resume",
        "loss_name": "biv",
        "seed": 11,
        "dataset": {"name": "toy", "file": str(tmp_path / "data.npz")},
        "noise": {"name": "gamma", "file": str(tmp_path / "noise.npz")},
        "loss": {"type": "biv", "epsilon": 0.1},
        "model": {"name": "mlp", "hidden": [32, 16], "batchnorm": True},
        "training": {"lr": 0.003, "batch_size": 8, "epochs": 4, "eval_every": 3},
    }


def assert_same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("wall_time_s", "steps_per_s"):
        sa.pop(key), sb.pop(key)
    assert sa == sb
    assert not (b / "checkpoint.pt").exists()
    assert not list(b.glob(".*.tmp"))


class Crash(Exception):
    pass


@pytest.mark.parametrize(
    ("case", "loss", "model"),
    [
        ("mlp-bn-biv", {"type": "biv", "epsilon": 0.1}, None),
        ("cutoff-skips", {"type": "cutoff", "threshold": 0.01}, None),
        ("adaptive", {"type": "biv_adaptive", "ratio": 0.5}, None),
        ("cnn", {"type": "mse"}, {"name": "cnn"}),
    ],
)
def test_crash_after_a_checkpoint_then_resume(tmp_path, monkeypatch, case, loss, model):
    images = 64 if model else 0
    params = write_inputs(tmp_path, n_train=12 if images else 40, n_test=5, images=images)
    params["loss"] = loss
    params["model"] = model or params["model"]
    params["training"].update(
        checkpoint_every=3, epochs=3 if images else 4, batch_size=4 if images else 8
    )
    train(params, tmp_path / "reference")

    real_save, saves = biv.train.loop.save_checkpoint, []

    def save_then_crash(*args):
        real_save(*args)
        saves.append(1)
        if len(saves) == 2:
            raise Crash

    monkeypatch.setattr(biv.train.loop, "save_checkpoint", save_then_crash)
    with pytest.raises(Crash):
        train(params, tmp_path / "resumed")
    assert (tmp_path / "resumed/checkpoint.pt").exists()
    monkeypatch.setattr(biv.train.loop, "save_checkpoint", real_save)
    train(params, tmp_path / "resumed")
    run = json.loads((tmp_path / "resumed/run.json").read_text())
    assert run["run"]["resumed_from_step"] == 6
    assert_same_outputs(tmp_path / "reference", tmp_path / "resumed")
    if loss["type"] == "cutoff":
        summary = json.loads((tmp_path / "resumed/summary.json").read_text())
        assert summary["skipped_steps"] > 0


def test_checkpoint_of_other_parameters_is_refused(tmp_path, monkeypatch):
    params = write_inputs(tmp_path, n_train=40, n_test=5)
    params["training"]["checkpoint_every"] = 2

    def crash(*args):
        raise Crash

    real_save = biv.train.loop.save_checkpoint
    monkeypatch.setattr(biv.train.loop, "save_checkpoint", lambda *a: (real_save(*a), crash()))
    with pytest.raises(Crash):
        train(params, tmp_path / "run")
    monkeypatch.undo()
    params["training"]["lr"] = 0.5
    with pytest.raises(ValueError, match=r"checkpoint .* other run parameters .*\['training'\]"):
        train(params, tmp_path / "run")
    assert (tmp_path / "run/checkpoint.pt").exists()  # by hand: kept, the user decides


def _crash_after_first_checkpoint(params: dict, out: Path, monkeypatch) -> None:
    real_save = biv.train.loop.save_checkpoint

    def save_then_crash(*args):
        real_save(*args)
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(biv.train.loop, "save_checkpoint", save_then_crash)
        with pytest.raises(Crash):
            train(params, out)
    assert (out / "checkpoint.pt").exists()


def _damage(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("problem", ["other-parameters", "damaged", "not-a-checkpoint"])
def test_unusable_checkpoint_is_discarded_in_workflow_jobs(tmp_path, monkeypatch, caplog, problem):
    """Workflow jobs (discard_unusable_checkpoint) log the checkpoint and start afresh: the run
    ends with the bytes of a run that never had a checkpoint; by hand it is an error."""
    params = write_inputs(tmp_path, n_train=40, n_test=5)
    params["training"]["checkpoint_every"] = 2
    out = tmp_path / "run"
    _crash_after_first_checkpoint(params, out, monkeypatch)
    checkpoint = out / "checkpoint.pt"
    if problem == "other-parameters":
        params["loss"]["epsilon"] = 0.05
        expected = r"other run parameters \(differing: \['loss'\]\)"
    elif problem == "damaged":
        _damage(checkpoint)
        expected = r"cannot be read"
    else:
        torch.save({"something": torch.zeros(2)}, checkpoint)
        expected = r"cannot be read \(KeyError"
    with pytest.raises(biv.train.loop.CheckpointError, match=expected):
        train(params, out)
    assert checkpoint.exists()

    train(params, tmp_path / "reference")
    with caplog.at_level("WARNING", logger="biv.train.loop"):
        train(params, out, discard_unusable_checkpoint=True)
    assert re.search(expected + r".*deleted, training starts from step 0", caplog.text)
    assert json.loads((out / "run.json").read_text())["run"]["resumed_from_step"] == 0
    assert_same_outputs(tmp_path / "reference", out)


def test_checkpoint_holds_plain_types_whatever_the_caller_passed(tmp_path, monkeypatch):
    """Snakemake hands paths over as AnnotatedString (a str subclass that weights_only loading
    refuses); the checkpoint stores plain JSON types and the run resumes from it."""
    from snakemake.io import AnnotatedString

    params = write_inputs(tmp_path, n_train=40, n_test=5)
    params["training"]["checkpoint_every"] = 2
    for key in ("dataset", "noise"):
        params[key] = {k: AnnotatedString(v) for k, v in params[key].items()}
    train(params, tmp_path / "reference")
    _crash_after_first_checkpoint(params, tmp_path / "run", monkeypatch)
    state = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)
    assert type(state["params"][0]["dataset"]["file"]) is str
    train(params, tmp_path / "run")
    assert json.loads((tmp_path / "run/run.json").read_text())["run"]["resumed_from_step"] == 2
    assert_same_outputs(tmp_path / "reference", tmp_path / "run")


def _checkpoint_step(path: Path) -> int:
    try:
        return torch.load(path, weights_only=True)["step"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return 0


def _start(params_file: Path, out: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "biv.cli", "train", str(params_file), str(out)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )


def _wait_for_checkpoint(proc: subprocess.Popen, path: Path, step: int, log: Path) -> int:
    deadline, seen = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) early:\n{log.read_text()}")
        try:
            stat = path.stat()
            version = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            version = None
        if version is not None and version != seen:
            seen, reached = version, _checkpoint_step(path)
            if reached >= step:
                return reached
        time.sleep(0.002)  # polling the checkpoint file, not synchronising by time
    proc.kill()
    pytest.fail(f"no checkpoint at step >= {step}:\n{log.read_text()}")


@pytest.mark.slow
def test_sigkill_at_several_points_resumes_to_identical_bytes(tmp_path):
    params = write_inputs(tmp_path, n_train=240, n_test=60)
    params["training"].update(epochs=30, checkpoint_every=20)  # 30 steps/epoch, 900 steps
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(params))
    train(params, tmp_path / "reference")  # one thread, like the subprocesses

    out, log = tmp_path / "killed", tmp_path / "killed.log"
    checkpoint = out / "checkpoint.pt"
    for target in (20, 360, 640):
        proc = _start(params_file, out, log)
        reached = _wait_for_checkpoint(proc, checkpoint, target, log)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        assert reached >= target and _checkpoint_step(checkpoint) >= reached
        assert not [p for p in out.iterdir() if p.name != "checkpoint.pt"]  # nothing half-done
    final = _start(params_file, out, log)
    assert final.wait(timeout=300) == 0, log.read_text()

    resumed_from = [int(n) for n in re.findall(r"resuming after step (\d+)", log.read_text())]
    assert len(resumed_from) == 3 and resumed_from[0] >= 20 and resumed_from[1] >= 360
    assert json.loads((out / "run.json").read_text())["run"]["resumed_from_step"] >= 640
    assert resumed_from[2] == json.loads((out / "run.json").read_text())["run"]["resumed_from_step"]
    assert_same_outputs(tmp_path / "reference", out)
    assert json.loads((out / "summary.json").read_text())["steps"] == 900


@pytest.mark.parametrize("signum", biv.train.loop.STOP_SIGNALS)
def test_a_stop_signal_checkpoints_the_step_it_came_in(tmp_path, monkeypatch, caplog, signum):
    """SIGTERM (a time limit, preemption) or SIGUSR2 (an early warning) in step 7: the pack
    checkpoints after step 7, not at its last periodic checkpoint (every 4 steps), and stops;
    run again, it resumes there and ends with the uninterrupted run's bytes. The process's own
    handlers are back afterwards."""
    params = write_inputs(tmp_path, n_train=40, n_test=5)
    params["training"].update(checkpoint_every=4)
    train(params, tmp_path / "reference")

    real_record = biv.train.loop._append_step_metrics

    def signal_in_step_7(metrics, step, *args):
        real_record(metrics, step, *args)
        if step == 7:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(biv.train.loop, "_append_step_metrics", signal_in_step_7)
    handlers = [signal.getsignal(s) for s in biv.train.loop.STOP_SIGNALS]
    with pytest.raises(biv.train.loop.Stopped, match=f"{signal.Signals(signum).name} after step 7"):
        train(params, tmp_path / "resumed")
    assert [signal.getsignal(s) for s in biv.train.loop.STOP_SIGNALS] == handlers
    assert _checkpoint_step(tmp_path / "resumed/checkpoint.pt") == 7
    monkeypatch.setattr(biv.train.loop, "_append_step_metrics", real_record)
    with caplog.at_level("INFO", logger="biv.train.loop"):
        train(params, tmp_path / "resumed")
    name = signal.Signals(signum).name
    assert f"resuming after step 7 (checkpointed there on {name})" in caplog.text
    assert json.loads((tmp_path / "resumed/run.json").read_text())["run"]["resumed_from_step"] == 7
    assert_same_outputs(tmp_path / "reference", tmp_path / "resumed")


def test_a_signal_during_a_periodic_save_stops_the_next_step_and_says_why(tmp_path, monkeypatch):
    """SIGTERM while the periodic checkpoint of step 4 is being written: that checkpoint stays a
    periodic one, and the pack checkpoints step 5 as stopped by SIGTERM (never a periodic
    checkpoint that a stop claims as its own)."""
    params = write_inputs(tmp_path, n_train=40, n_test=5)
    params["training"].update(checkpoint_every=4)
    real_save, saved = biv.train.loop._State.save, []

    def signal_while_saving(state, checkpoint, runs):
        real_save(state, checkpoint, runs)
        saved.append((state.progress.step, state.progress.stopped_by))
        if state.progress.step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(biv.train.loop._State, "save", signal_while_saving)
    with pytest.raises(biv.train.loop.Stopped, match="SIGTERM after step 5"):
        train(params, tmp_path / "run")
    assert saved == [(4, None), (5, "SIGTERM")]
    assert _checkpoint_step(tmp_path / "run/checkpoint.pt") == 5


@pytest.mark.slow
def test_biv_train_on_sigterm_loses_no_step(tmp_path):
    """`biv train` sent SIGTERM (as Slurm does at a time limit, KillWait before SIGKILL) after
    its first checkpoint exits with 128 + 15 once it has checkpointed the step it was in; run
    again, it resumes after that step and ends with the uninterrupted run's bytes."""
    params = write_inputs(tmp_path, n_train=240, n_test=60)
    params["training"].update(epochs=30, checkpoint_every=200)  # 900 steps
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(params))
    train(params, tmp_path / "reference")
    out, log = tmp_path / "stopped", tmp_path / "stopped.log"
    proc = _start(params_file, out, log)
    first = _wait_for_checkpoint(proc, out / "checkpoint.pt", 200, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()
    stopped_at = _checkpoint_step(out / "checkpoint.pt")
    assert f"checkpoint after step {stopped_at}, stopping" in log.read_text()
    assert stopped_at > first or stopped_at == 900  # the step of the signal: none lost
    assert _start(params_file, out, log).wait(timeout=300) == 0, log.read_text()
    assert f"resuming after step {stopped_at} (checkpointed there on SIGTERM)" in log.read_text()
    assert_same_outputs(tmp_path / "reference", out)
