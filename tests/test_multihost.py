"""Multi-controller JAX on this machine: train.py and evaluate.py as two processes on localhost (CPU
backend, 4 host-platform devices each, gloo for the cross-process collectives, a free port for the
coordinator), against one process with 8 devices.

(a) 3 training steps of the tiny PUT+FDM config (configs/demo.py = paris:tiny on built-in images, FDM
    phase) give the parameters of one 8-device process on the same global batches. Not bit-identical:
    the batch mean of the gradients is an all-reduce over the 8 devices, which XLA's in-process CPU
    collective and gloo's cross-process one sum in different orders (float32 is not associative); the
    losses differ in the last bit from step 1 (measured: |dparam| <= 1.5e-8 after 3 steps), hence
    rtol 1e-5 / atol 1e-6. Checked by breaking it: with every process loading process 0's rows, the
    first parameter array compared after 3 steps is off by 2.3e-5 (0.4 % relative) and (a), (b) fail;
    with every process writing as process 0, (d) fails (4 TensorBoard files); with every process
    evaluating every chunk, (c) fails.
(b) both processes SIGKILLed after the checkpoint of step 3 and restarted resume from it and end at
    step 12 with the parameters of the uninterrupted one-process run (same tolerance, same reason).
(c) evaluate.py over 8 images as two processes writes the table and per-image records of one process.
(d) one copy of each log line and file: process 1 prints none of the run's messages and writes no
    metrics.jsonl, TensorBoard event, sample grid, plot or evaluation table (every write of each
    process is recorded by tests/multihost_child.py), and metrics.jsonl holds each step once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from shared_paths import fixtures_dir, require

REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).resolve().parent / "multihost_child.py"
STEPS, EVERY = 12, 3
TRAIN_ARGS = ["--config", "configs/demo.py", "--no-progress", "--config.phase=fdm", "--config.train.fdm.init_from=",
              f"--config.run.max_steps={STEPS}", f"--config.run.checkpoint_every={EVERY}", "--config.run.log_every=3",
              f"--config.run.sample_every={STEPS}", "--config.run.keep_checkpoints=10"]
RTOL, ATOL = 1e-5, 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(devices: int, write_log: Path, cache: Path) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               FDM_JAX_COMPILATION_CACHE=str(cache), FDM_JAX_WRITE_LOG=str(write_log),
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    for k in [k for k in env if k.startswith(("SLURM_", "OMPI_", "TPU_", "MEGASCALE_", "JAX_COORDINATOR"))]:
        del env[k]  # the test starts its processes itself
    return env


class Launch:
    """`script` as `n` processes (4 devices each when n > 1, 8 when alone), stdout+stderr and written
    files of process k in logs/<tag>.p<k>.{out,writes}. The launches of a test share a persistent
    compilation cache, so a restarted run loads the programs its first start compiled."""

    def __init__(self, tmp: Path, tag: str, script: str, args: list[str], n: int):
        self.logs = tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.tag, self.n = tag, n
        port = _free_port()
        self.procs = []
        for k in range(n):
            dist = [f"--coordinator_address=localhost:{port}", f"--num_processes={n}", f"--process_id={k}"] \
                if n > 1 else []
            with open(self.logs / f"{tag}.p{k}.out", "w") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, str(CHILD), str(REPO / script)] + args + dist, cwd=REPO,
                    env=_env(4 if n > 1 else 8, self.logs / f"{tag}.p{k}.writes", tmp / "jax_cache"), stdout=out,
                    stderr=subprocess.STDOUT))

    def wait(self, timeout: float = 600) -> None:
        deadline = time.time() + timeout
        for p in self.procs:
            try:
                p.wait(max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        codes = [p.returncode for p in self.procs]
        assert codes == [0] * self.n, f"{self.tag}: exit codes {codes}\n" + "\n".join(
            f"--- process {k}:\n{self.output(k)[-3000:]}" for k in range(self.n))

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()

    def output(self, k: int) -> str:
        return (self.logs / f"{self.tag}.p{k}.out").read_text()

    def lines(self, k: int) -> list[str]:
        """The run's own lines (not gloo's connection messages, JAX's or absl's warnings)."""
        skip = ("[Gloo]", "WARNING", "W0", "I0", "E0")
        return [ln for ln in self.output(k).splitlines() if ln.strip() and not ln.startswith(skip)]

    def writes(self, k: int, under: Path) -> set[str]:
        path = self.logs / f"{self.tag}.p{k}.writes"
        under = str(under.resolve())
        rel = set()
        for ln in (path.read_text().splitlines() if path.is_file() else []):
            if ln.startswith(under + os.sep):
                rel.add(os.path.relpath(ln, under))
        return rel


def _variables(run: Path, step: int) -> list[np.ndarray]:
    from fdm_jax.train.checkpointing import load_trained_variables

    variables, _ = load_trained_variables(run, step)
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(variables)]


def _assert_close(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b) and a
    worst = 0.0
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)
        worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0)
    return worst


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process on 8 devices, uninterrupted; two processes killed after step 3, then restarted."""
    tmp = tmp_path_factory.mktemp("multihost")
    one, two = tmp / "one", tmp / "two"
    single = Launch(tmp, "train_one", "train.py", TRAIN_ARGS + ["--workdir", str(one)], 1)

    killed = Launch(tmp, "train_killed", "train.py", TRAIN_ARGS + ["--workdir", str(two)], 2)
    ckpts = two / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline and all(p.poll() is None for p in killed.procs):
        if (ckpts / str(EVERY)).is_dir():  # orbax renames the step directory when it is complete
            break
        time.sleep(0.02)
    running = [p.poll() is None for p in killed.procs]
    killed.kill()
    assert all(running), "a process ended before the kill: " + killed.output(0)[-2000:] + killed.output(1)[-2000:]
    saved = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    assert saved and saved[-1] < STEPS, f"killed too late to show a resume: checkpoints {saved}"

    resumed = Launch(tmp, "train_resumed", "train.py", TRAIN_ARGS + ["--workdir", str(two)], 2)
    resumed.wait()
    single.wait()
    return {"one": one, "two": two, "single": single, "killed": killed, "resumed": resumed,
            "killed_at": saved[-1]}


@pytest.mark.slow  # the module's 5 launches of train.py / evaluate.py take minutes; CI's second stage
def test_a_three_steps_on_two_processes_equal_one_process(runs):
    worst = _assert_close(_variables(runs["two"], EVERY), _variables(runs["one"], EVERY))
    print(f"step {EVERY}: max |two processes - one process| = {worst:.3g}")
    # The losses of the same global batches: equal to float tolerance, step by step.
    from fdm_jax.train.metrics_log import read_metrics

    a, b = read_metrics(runs["two"] / "metrics.jsonl"), read_metrics(runs["one"] / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(3, STEPS + 1, 3))
    np.testing.assert_allclose([r["loss"] for r in a], [r["loss"] for r in b], rtol=RTOL)


@pytest.mark.slow
def test_b_killed_in_both_processes_and_restarted_resumes(runs):
    resumed = runs["resumed"]
    at = runs["killed_at"]
    said = [ln for ln in resumed.lines(0) if "resumed from" in ln]
    assert len(said) == 1 and said[0].endswith(f"checkpoints/{at}"), resumed.lines(0)
    worst = _assert_close(_variables(runs["two"], STEPS), _variables(runs["one"], STEPS))
    print(f"killed after step {at}, resumed; step {STEPS}: max |two processes - one process| = {worst:.3g}")


@pytest.mark.slow
def test_c_evaluate_on_two_processes_gives_the_one_process_table(tmp_path):
    import cv2

    put = fixtures_dir() / "put_fdm"
    weights = [require(put / "put_fdm_codec_fdm_tuning.pth"), require(put / "put_fdm_transformer.pth")]
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):  # smooth random colour images (the eval preprocessing resizes and crops to 64)
        cv2.imwrite(str(images / f"img{i}.png"), cv2.resize(rng.integers(0, 256, (5, 6, 3)).astype(np.uint8),
                                                             (96, 80), interpolation=cv2.INTER_LINEAR))
    for k in range(40):  # one rectangular hole each, hole ratios spread over (0.05, 0.7)
        ratio = 0.05 + 0.65 * k / 39
        h = int(round(128 * np.sqrt(ratio)))
        w = min(128, int(round(ratio * 128 * 128 / h)))
        y, x = rng.integers(0, 128 - h + 1), rng.integers(0, 128 - w + 1)
        m = np.zeros((128, 128), np.uint8)
        m[y:y + h, x:x + w] = 255
        cv2.imwrite(str(masks / f"{k:05d}.png"), m)
    args = ["--checkpoint", str(weights[0]), "--checkpoint", str(weights[1]), "--config", "configs/paris.py:tiny",
            "--data", str(images), "--mask-dir", str(masks), "--buckets", "0.2-0.4,0.4-0.6", "--num-images", "8",
            "--num-samples", "2", "--batch-size", "2", "--metrics", "ssim,psnr,mae,l1", "--no-progress"]
    one, two = tmp_path / "one", tmp_path / "two"
    single = Launch(tmp_path, "eval_one", "evaluate.py", args + ["--out", str(one)], 1)
    pair = Launch(tmp_path, "eval_two", "evaluate.py", args + ["--out", str(two)], 2)
    pair.wait()
    single.wait()
    assert (two / "table.md").read_text() == (one / "table.md").read_text()
    # The per-image records (every metric of every sample), merged in a one-process run's order.
    assert (two / "records.jsonl").read_text() == (one / "records.jsonl").read_text()
    assert len((two / "records.jsonl").read_text().splitlines()) == 16  # 8 images x 2 buckets
    assert not list(two.glob("records.p*.jsonl"))  # the per-process files were merged away
    # Each process sampled its share: chunks of 2 images dealt round-robin, in both buckets.
    for k in range(2):
        samples = {w for w in pair.writes(k, two) if w.startswith("samples" + os.sep)}
        mine = {i for i in range(8) if (i // 2) % 2 == k}
        assert {int(Path(w).name.split("_")[0]) for w in samples} == mine, (k, sorted(samples))
    # (d) for evaluate: the table, results, grid, plots and manifests come from process 0 only.
    reports = {"table.md", "results.json", "grid.png", "metrics.png", "manifest.json", "masks.json", "records.jsonl"}
    assert reports <= pair.writes(0, two), sorted(pair.writes(0, two))
    assert not reports & pair.writes(1, two), sorted(reports & pair.writes(1, two))
    table = (two / "table.md").read_text().splitlines()[0]
    assert table in pair.lines(0) and not any("|" in ln or "wrote" in ln for ln in pair.lines(1)), pair.lines(1)


@pytest.mark.slow
def test_d_one_copy_of_each_log_line_and_file(runs):
    two = runs["two"]
    # metrics.jsonl: each logged step once (two writers, or a second process's rows, would repeat them).
    steps = [int(ln.split('"step": ')[1].split(",")[0]) for ln in (two / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(3, STEPS + 1, 3)), steps
    # One TensorBoard event file per start of the run (two starts), one grid, one plot.
    assert len(list((two / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert sorted(p.name for p in (two / "samples").iterdir()) == [f"step_{STEPS:07d}.png"]
    run_files = ("metrics.jsonl", "tensorboard", "samples", "loss_curves.png")
    for launch in (runs["killed"], runs["resumed"]):
        w0, w1 = launch.writes(0, two), launch.writes(1, two)
        assert {f for f in w1 if not f.startswith("checkpoints" + os.sep)} == set(), (launch.tag, sorted(w1))
        assert any(f.startswith("metrics.jsonl") for f in w0) and any(f.startswith("tensorboard") for f in w0)
    w0 = runs["resumed"].writes(0, two)
    assert f"samples/step_{STEPS:07d}.png" in w0 and "loss_curves.png" in w0
    # Log lines: the run's messages come from process 0, once; process 1 prints none of them.
    out0, out1 = runs["resumed"].lines(0), runs["resumed"].lines(1)
    assert sum(ln.startswith("done: ") for ln in out0) == 1
    assert not any(ln.startswith(("done: ", "[fdm]", "compiling")) for ln in out1), out1


def test_a_plain_process_does_not_join_a_cluster_and_launchers_are_detected(monkeypatch):
    """Only explicit flags or a launcher's environment start jax.distributed; partial flags are an error."""
    from fdm_jax.train import distributed

    for k in [k for k in os.environ if k.startswith(("SLURM_", "OMPI_", "TPU_", "MEGASCALE_", "JAX_COORDINATOR",
                                                       "FDM_JAX_DISTRIBUTED"))]:
        monkeypatch.delenv(k)
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
    assert distributed.cluster_from_environment() is None
    assert distributed.initialize() is False and not calls
    assert distributed.initialize("localhost:1", 1, 0) is False and not calls  # one process: nothing to join
    with pytest.raises(ValueError, match="go together"):
        distributed.initialize("localhost:1", None, 0)
    with pytest.raises(ValueError, match="not in"):
        distributed.initialize("localhost:1", 2, 2)
    # A SLURM batch script's own shell (one process) is not an srun step.
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "16")
    assert distributed.cluster_from_environment() is None
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "16")
    assert distributed.cluster_from_environment() == "SLURM"
    monkeypatch.setenv("FDM_JAX_DISTRIBUTED", "0")
    assert distributed.cluster_from_environment() is None
    monkeypatch.delenv("FDM_JAX_DISTRIBUTED")
    for k in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "t1")
    assert distributed.cluster_from_environment() is None  # a single-host TPU VM
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "t1,t2,t3,t4")
    assert distributed.cluster_from_environment() == "Cloud TPU"
    assert distributed.initialize() is True and calls == [((), {})]  # JAX's auto-detection fills in the rest


def test_per_process_records_merge_in_one_process_order(tmp_path):
    """The gather step alone: records.jsonl plus the per-process files of an interrupted two-process
    run load as one set (a torn last line dropped) and merge into records.jsonl in (bucket, image)
    order, the per-process files removed."""
    import json

    from fdm_jax.evaluation.records import (_gt_path, _load_all_records, _merge_records, _part_path,
                                            _sample_path)

    def rec(bucket, i):
        for p in [_gt_path(tmp_path, i), _sample_path(tmp_path, bucket, i, 0)]:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"png")
        return json.dumps({"bucket": bucket, "index": i, "metrics": {"psnr": [float(i)]}}) + "\n"

    (tmp_path / "records.jsonl").write_text(rec("0.2-0.4", 0))
    _part_path(tmp_path, 1).write_text(rec("0.4-0.6", 3) + rec("0.2-0.4", 3) + '{"bucket": "0.4')  # torn
    _part_path(tmp_path, 0).write_text(rec("0.4-0.6", 0) + rec("0.2-0.4", 1))
    records = _load_all_records(tmp_path, 1)
    assert sorted(records) == [("0.2-0.4", 0), ("0.2-0.4", 1), ("0.2-0.4", 3), ("0.4-0.6", 0), ("0.4-0.6", 3)]
    _merge_records(tmp_path, records, ["0.2-0.4", "0.4-0.6"])
    rows = [json.loads(x) for x in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [(r["bucket"], r["index"]) for r in rows] == [("0.2-0.4", 0), ("0.2-0.4", 1), ("0.2-0.4", 3),
                                                         ("0.4-0.6", 0), ("0.4-0.6", 3)]
    assert not list(tmp_path.glob("records.p*.jsonl"))
