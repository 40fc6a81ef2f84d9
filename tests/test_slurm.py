"""The Slurm profile on a real single-node Slurm cluster (tests/slurm/start-cluster.sh).

The tiny config (one seed per experiment, for CI time) runs through
`--profile profiles/slurm --profile tests/slurm/profile` in a copy of the workflow. The checks
read Slurm's own records (sacct: partition, requested and allocated GPUs, job state, job steps)
and the executor plugin's per-job logs (which Snakemake jobs ran in which Slurm job). Skipped
only when no cluster answers; with BIV_REQUIRE_SLURM=1 (CI) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from biv.config import TRAINING_DEFAULTS, pack_name
from biv.train.devices import FAKE_GPUS

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = (
    "Snakefile",
    "rules",
    "scripts",
    "config",
    "envs",
    "report",
    "src",
    "profiles",
    "tests/configs",
    "tests/slurm/profile",
)
TINY = "tests/configs/tiny.yaml"
CONFIG = "tests/configs/slurm.yaml"  # the tiny config with one seed per experiment (CI time)
SUMMARY = "results/tables/summary.csv"
PROFILES = ("--profile", "profiles/slurm", "--profile", "tests/slurm/profile")
CLUSTER_RULES = {
    "prepare_dataset",
    "estimate_noise",
    "draw_noise",
    "plot_noise",
    "train",
    "train_cpu",
}
SITE_KEYS = {"slurm_partition", "slurm_account", "gpu_model"}
RUN_TIMEOUT_S = 480
USABLE_NODE_STATES = {"idle", "mixed", "allocated", "completing"}
TIMING_COLUMN = re.compile(r"time|per_s|duration|date|host", re.IGNORECASE)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# --- the profiles themselves (no cluster needed) -------------------------------------------


def without_site_keys(block: dict) -> dict:
    """A resources block without its site entries (partition, account, GPU model)."""
    kept = {}
    for key, value in block.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in SITE_KEYS}
            if value:
                kept[key] = value
        elif key not in SITE_KEYS:
            kept[key] = value
    return kept


def test_profile_packs_groups_and_leaves_the_gpu_request_to_the_workflow():
    profile = load_yaml(ROOT / "profiles/slurm/config.yaml")
    assert profile["executor"] == "slurm"
    train, train_cpu = profile["set-resources"]["train"], profile["set-resources"]["train_cpu"]
    assert "gpu" not in train  # rules/train.smk: one GPU for train, none for train_cpu
    assert train["cpus_per_gpu"] >= 1 and train_cpu["cpus_per_task"] >= 1
    assert "slurm_partition" not in train  # a site setting
    assert not {"gpu", "gpu_model", "gres"} & set(train_cpu)
    assert "prepare_dataset" not in profile["set-resources"]  # the rule sizes it by its data
    groups = set(profile["groups"].values()) | {"train-mlp", "train-cpu"}  # set by the workflow
    assert set(profile["group-components"]) <= groups
    assert profile["cores"] >= 1 and profile["retries"] >= 1


@pytest.mark.parametrize("override", ["profiles/slurm-site-example", "tests/slurm/profile"])
def test_override_profiles_keep_the_user_profile_requests(override):
    """A later profile replaces whole top-level keys: an override that sets `set-resources` or
    `default-resources` must repeat the user profile's entries, changing only site keys."""
    profile = load_yaml(ROOT / "profiles/slurm/config.yaml")
    site = load_yaml(ROOT / override / "config.yaml")
    for key in ("default-resources", "set-resources"):
        if key in site:
            assert without_site_keys(site[key]) == without_site_keys(profile[key]), key
    if override.startswith("tests/"):
        assert "set-resources" not in site and "default-resources" not in site


# --- the cluster ------------------------------------------------------------------------


def sh(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def cluster_problem() -> str | None:
    """None when a Slurm controller answers and has a usable node, else why not."""
    if shutil.which("sinfo") is None:
        return "`sinfo` is not installed"
    try:
        result = sh("sinfo", "-h", "-N", "-o", "%T", timeout=30)
    except subprocess.TimeoutExpired:
        return "`sinfo` timed out"
    if result.returncode != 0:
        return f"`sinfo` failed: {result.stderr.strip()}"
    states = {s.rstrip("*~#") for s in result.stdout.split()}
    if not states & USABLE_NODE_STATES:
        return f"no usable node (node states: {sorted(states) or 'none'})"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = cluster_problem()
    if problem is not None:
        message = f"no Slurm cluster: {problem}; start one with tests/slurm/start-cluster.sh"
        if os.environ.get("BIV_REQUIRE_SLURM") == "1":
            pytest.fail(f"BIV_REQUIRE_SLURM=1 but {message}")
        pytest.skip(message)
    accounting = sh("sacct", "-n", "-X", "-S", "now-1minutes")
    if accounting.returncode != 0:
        pytest.fail(f"sacct does not work (slurmdbd needed): {accounting.stderr.strip()}")


@dataclass(frozen=True)
class SlurmJob:
    state: str
    partition: str
    req_tres: str
    alloc_tres: str
    steps: int


@dataclass
class Run:
    workdir: Path
    returncode: int
    log: str
    slurm: dict[str, SlurmJob]  # Slurm job id -> sacct record
    members: dict[str, set[tuple[str, str]]]  # Slurm job id -> {(rule, pack or wildcards)}
    cancelled: str | None = None

    def training(self) -> dict[str, set[str]]:
        """Slurm job id -> the packs ('noisy/biv/seeds1-5') it trained."""
        jobs = {
            jid: {name for rule, name in members if rule in ("train", "train_cpu")}
            for jid, members in self.members.items()
        }
        return {jid: runs for jid, runs in jobs.items() if runs}


def slurm_workflow(copy_workflow, dest: Path) -> Path:
    """The workflow in `dest`, with CONFIG: the tiny config, one seed per experiment, noisy
    trainings long enough (6,000 steps, a checkpoint every 100) to be cancelled halfway, and the
    clean experiment trained on the CPU (`training.device: cpu`)."""
    dest = copy_workflow(dest, WORKFLOW)
    config = load_yaml(ROOT / TINY)
    config.pop("reproduction")  # its reference file is not needed here
    config["sweeps"].pop("grid")  # a figure's 8 packs: no more Slurm behaviour to test
    for experiment in config["experiments"].values():
        experiment["seeds"] = experiment["seeds"][:1]
    config["experiments"]["noisy"]["training"].update(epochs=1200, checkpoint_every=100)
    config["experiments"]["clean"]["training"]["device"] = "cpu"  # a CPU job, no GPU
    (dest / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def snakemake_env() -> dict[str, str]:
    """The environment of the test's snakemake, which Slurm passes on to its jobs: this
    cluster's GPUs are /dev/null, which the trainings are told (test-only, biv.train.devices)."""
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    return env | {FAKE_GPUS: "1"}


def snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """Start `snakemake *args --configfile CONFIG` in `workdir`, output to snakemake-run.log."""
    cmd = ["timeout", "-k", "30", str(RUN_TIMEOUT_S), sys.executable, "-m", "snakemake"]
    with (workdir / "snakemake-run.log").open("w") as log:
        return subprocess.Popen(
            [*cmd, *args, "--configfile", CONFIG],
            cwd=workdir,
            env=snakemake_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish(proc: subprocess.Popen, workdir: Path) -> tuple[int, str]:
    returncode = proc.wait()
    return returncode, (workdir / "snakemake-run.log").read_text(errors="replace")


def cancel_jobs_of(workdir: Path) -> None:
    """scancel whatever a failed or killed run left queued in this folder."""
    queued = sh("squeue", "-h", "-o", "%i|%Z").stdout.splitlines()
    ids = [line.split("|")[0] for line in queued if line.split("|")[-1] == str(workdir)]
    if ids:
        sh("scancel", *ids)


def sacct_jobs(workdir: Path, since: datetime) -> dict[str, SlurmJob]:
    """Slurm's records of the jobs submitted from `workdir` since `since`."""
    fields = "JobIDRaw,State,Partition,ReqTRES,AllocTRES,WorkDir,Submit"
    start = (since - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    for _ in range(30):  # slurmdbd may record the end of the last job a moment later
        out = sh("sacct", "-P", "-n", "-S", start, "-o", fields)
        assert out.returncode == 0, out.stderr
        rows = [line.split("|") for line in out.stdout.splitlines()]
        main = {r[0]: r for r in rows if "." not in r[0] and r[5] == str(workdir) and r[6] >= start}
        if not any(r[1] in ("PENDING", "RUNNING") for r in main.values()):
            break
        time.sleep(1)
    steps: dict[str, int] = defaultdict(int)
    for r in rows:
        job, _, step = r[0].partition(".")
        if step.isdigit():
            steps[job] += 1
    return {
        jid: SlurmJob(state=r[1], partition=r[2], req_tres=r[3], alloc_tres=r[4], steps=steps[jid])
        for jid, r in main.items()
    }


RULE_BLOCK = re.compile(r"^\s*(?:localrule|rule) (\w+):\n((?:[ \t]+\w+: .*\n)+)", re.MULTILINE)


def pack_name_of(body: str) -> str:
    """The pack's name ('noisy/biv/seeds1-5') from the output line of a train job's block
    (error summaries of a cancelled job carry the output line but no wildcards line)."""
    found = re.search(r"^\s+output: .*?results/runs/([^\s,]+)", body, re.MULTILINE)
    return found.group(1)


def pack_of(run: str) -> str:
    """The pack of a run ('noisy/biv/seed1' -> 'noisy/biv/seeds1-5'; the config
    leaves training.pack_size at its default)."""
    folder, _, seed = run.rpartition("/seed")
    return f"{folder}/{pack_name(int(seed), TRAINING_DEFAULTS['pack_size'])}"


def run_dir(workdir: Path, run: str) -> Path:
    """The folder of a run ('noisy/biv/seed1'): in its pack's output folder."""
    return workdir / "results/runs" / pack_of(run) / run.rpartition("/")[2]


def plugin_members(workdir: Path, job_ids: set[str]) -> dict[str, set[tuple[str, str]]]:
    """Which Snakemake jobs each Slurm job ran, read from the plugin's Slurm log of that job."""
    logs = {p.stem: p for p in (workdir / ".snakemake/slurm_logs").rglob("*.log")}
    members = {}
    for jid in job_ids:
        assert jid in logs, f"no plugin log for Slurm job {jid}"
        found = set()
        for rule, body in RULE_BLOCK.findall(logs[jid].read_text(errors="replace")):
            wildcards = re.search(r"^\s+wildcards: (.*)$", body, re.MULTILINE)
            name = wildcards.group(1).strip() if wildcards else ""
            training = rule in ("train", "train_cpu")
            found.add((rule, pack_name_of(body) if training else name))
        members[jid] = found
    return members


def slurm_run(workdir: Path, proc: subprocess.Popen, since: datetime, cancel=None) -> Run:
    cancelled = cancel(workdir, proc) if cancel else None
    returncode, log = finish(proc, workdir)
    cancel_jobs_of(workdir)
    slurm = sacct_jobs(workdir, since)
    return Run(workdir, returncode, log, slurm, plugin_members(workdir, set(slurm)), cancelled)


def run_ok(*command: str) -> None:
    done = sh(*command)
    assert done.returncode == 0, (command, done.stderr)


def requeue(jid: str) -> None:
    """As preemption with PreemptMode=REQUEUE, or an admin: the job is killed and queued again,
    under its id. Slurm holds a requeued job for two minutes once it is pending again; the test
    lifts that hold."""
    run_ok("scontrol", "requeue", jid)
    deadline = time.monotonic() + 60
    while sh("squeue", "-h", "-j", jid, "-o", "%T").stdout.strip() != "PENDING":
        assert time.monotonic() < deadline, f"job {jid} was not requeued"
        time.sleep(0.2)
    run_ok("scontrol", "update", f"JobId={jid}", "StartTime=now")


def time_limit_now(jid: str) -> None:
    """The job's time limit cut to now (Slurm enforces it within about 30 s: SIGTERM, then
    SIGKILL KillWait=10 s later). Slurm refuses an end time before the job's first second."""
    deadline = time.monotonic() + 10
    while (done := sh("scontrol", "update", f"JobId={jid}", "EndTime=now")).returncode:
        assert time.monotonic() < deadline and "Invalid time" in done.stderr, done.stderr
        time.sleep(0.5)


#: What happens to a running training job in the tests, as on a real cluster: scancel (also
#: preemption with PreemptMode=CANCEL), a requeue, its time limit reached.
INTERRUPTIONS = {
    "cancel": lambda jid: run_ok("scancel", jid),
    "requeue": requeue,
    "time limit": time_limit_now,
}


def after_a_checkpoint(pack: str, interruption: str):
    """An interrupter: once `pack` has a checkpoint, do `interruption` to the Slurm job training
    it; that job's id."""

    def interrupt(workdir: Path, proc: subprocess.Popen) -> str | None:
        checkpoint = workdir / "results/checkpoints" / pack / "checkpoint.pt"
        while proc.poll() is None and not checkpoint.exists():
            time.sleep(0.02)
        for line in sh("squeue", "-h", "-t", "RUNNING", "-o", "%i|%k|%Z").stdout.splitlines():
            jid, comment, wd = line.split("|", 2)
            if wd == str(workdir) and "train" in comment:
                INTERRUPTIONS[interruption](jid)
                return jid
        return None

    return interrupt


def assert_finished(run: Run) -> None:
    assert run.returncode == 0, f"snakemake exited {run.returncode}:\n{run.log[-6000:]}"


def run_names(workdir: Path) -> set[str]:
    """The runs ('noisy/biv/seed1') with a folder in their pack's output folder."""
    files = (workdir / "results/runs").glob("*/*/seeds*/seed*/summary.json")
    return {f"{p.parts[-5]}/{p.parts[-4]}/{p.parts[-2]}" for p in files}


def read_summary(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    return table.drop(columns=[c for c in table.columns if TIMING_COLUMN.search(c)])


@pytest.fixture(scope="module")
def full_runs(cluster, copy_workflow, tmp_path_factory) -> tuple[Run, Path, pd.DataFrame | None]:
    """The tiny config through Slurm, and locally (`--cores 2`) at the same time; the Slurm run's
    summary table as it ended (``changed_run`` reruns in its folder, in whatever test order)."""
    slurm_dir = slurm_workflow(copy_workflow, tmp_path_factory.mktemp("slurm"))
    local_dir = slurm_workflow(copy_workflow, tmp_path_factory.mktemp("local"))
    since = datetime.now()
    local = snakemake(local_dir, "--cores", "2", SUMMARY)
    remote = snakemake(slurm_dir, *PROFILES)
    try:
        run = slurm_run(slurm_dir, remote, since)
    finally:
        local_returncode, local_log = finish(local, local_dir)
    assert local_returncode == 0, f"local run failed:\n{local_log[-6000:]}"
    summary = read_summary(slurm_dir / SUMMARY) if run.returncode == 0 else None
    return run, local_dir, summary


@pytest.fixture(scope="module")
def changed_run(full_runs) -> tuple[Run, str, dict[str, str], dict[str, str]]:
    """After the full run: one loss's epsilon changed, and its training job scancel'led once the
    run had a checkpoint."""
    workdir = full_runs[0].workdir
    config = load_yaml(workdir / CONFIG)
    loss = next(name for name, spec in config["losses"].items() if "epsilon" in spec)
    config["losses"][loss]["epsilon"] = config["losses"][loss]["epsilon"] / 2
    before = params_of(workdir)
    (workdir / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    since = datetime.now()
    proc = snakemake(workdir, *PROFILES)
    pack = pack_of(f"noisy/{loss}/seed1")
    run = slurm_run(workdir, proc, since, cancel=after_a_checkpoint(pack, "cancel"))
    return run, loss, before, params_of(workdir)


def params_of(workdir: Path) -> dict[str, str]:
    return {
        name: (run_dir(workdir, name) / "params.json").read_text() for name in run_names(workdir)
    }


def test_every_training_ran_on_the_device_it_asks_for_grouped_and_matches_local(full_runs):
    run, local_dir, summary = full_runs
    assert_finished(run)
    runs = run_names(run.workdir)
    assert runs and runs == run_names(local_dir)
    training = run.training()

    # every pack went through sbatch exactly once, in a job that asked for and got a GPU,
    # except those of the experiment trained on the CPU (training.device: cpu): CPU jobs
    placed = [name for names in training.values() for name in names]
    assert sorted(placed) == sorted({pack_of(name) for name in runs})
    on_cpu = {name.startswith("clean/") for names in training.values() for name in names}
    assert on_cpu == {True, False}
    for jid, names in training.items():
        job = run.slurm[jid]
        assert job.state == "COMPLETED", (jid, job)
        cpu = {name.startswith("clean/") for name in names}
        assert len(cpu) == 1, names  # a group job is all CPU or all GPU trainings
        if cpu == {True}:
            assert "gpu" not in job.req_tres and "gpu" not in job.alloc_tres, (jid, job)
            assert job.partition == "main", (jid, job)
        else:
            assert "gres/gpu=1" in job.req_tres and "gres/gpu=1" in job.alloc_tres, (jid, job)
            assert job.partition == "gpu", (jid, job)
    # the other cluster jobs are CPU jobs; aggregation and plots never went to Slurm
    for jid in set(run.slurm) - set(training):
        job = run.slurm[jid]
        assert job.state == "COMPLETED" and "gpu" not in job.alloc_tres, (jid, job)
        assert job.partition == "main", (jid, job)
    assert {rule for members in run.members.values() for rule, _ in members} <= CLUSTER_RULES

    # grouping: training runs shared Slurm jobs (at most group-components per job), the data
    # preparation and noise estimates shared one, the noise draws and their figures another; each
    # Snakemake job ran as one job step
    most = max(load_yaml(ROOT / "profiles/slurm/config.yaml")["group-components"].values())
    assert len(training) < len(placed)
    assert all(len(names) <= most for names in training.values())
    others = {jid: {rule for rule, _ in run.members[jid]} for jid in set(run.slurm) - set(training)}
    assert sorted(map(sorted, others.values())) == [
        ["draw_noise", "plot_noise"],
        ["estimate_noise", "prepare_dataset"],
    ], others
    for jid, members in run.members.items():
        assert run.slurm[jid].steps == len(members), (jid, run.slurm[jid], members)

    # same numbers as the local CPU run (same seeds)
    pd.testing.assert_frame_equal(summary, read_summary(local_dir / SUMMARY), check_exact=True)


def test_a_cancelled_training_job_is_retried_and_leaves_nothing_incomplete(changed_run):
    run = changed_run[0]
    assert run.cancelled is not None, "no running training job was there to scancel"
    assert run.slurm[run.cancelled].state.startswith("CANCELLED")
    assert_finished(run)
    lost = run.training().get(run.cancelled, set())
    assert lost, "the plugin log of the cancelled job names no training run"
    retried = [
        jid
        for jid, names in run.training().items()
        if names >= lost and int(jid) > int(run.cancelled)
    ]
    assert retried and all(run.slurm[jid].state == "COMPLETED" for jid in retried)
    for pack in lost:
        # the retry resumed from the cancelled attempt's checkpoint, and its log says from where
        job_log = (run.workdir / "results/logs/train" / f"{pack}.log").read_text()
        resumed = re.findall(r"resuming after step (\d+)", job_log)
        assert resumed and int(resumed[-1]) >= 100, job_log
        members = [name for name in run_names(run.workdir) if pack_of(name) == pack]
        assert members
        for name in members:
            json.loads((run_dir(run.workdir, name) / "summary.json").read_text())
            record = json.loads((run_dir(run.workdir, name) / "run.json").read_text())
            assert record["run"]["resumed_from_step"] == int(resumed[-1])
    assert not [p for p in (run.workdir / ".snakemake/incomplete").rglob("*") if p.is_file()]
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", CONFIG],
        cwd=run.workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout


def test_changing_one_loss_epsilon_resubmits_only_its_training_runs(changed_run):
    run, loss, before, after = changed_run
    assert_finished(run)
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed and all(name.split("/")[1] == loss for name in changed), changed
    submitted = {name for names in run.training().values() for name in names}
    assert submitted == {pack_of(name) for name in changed}
    assert set(run.training()) == set(run.slurm), "jobs other than training were submitted"


def one_pack_workflow(copy_workflow, dest: Path, epochs: int) -> Path:
    """The workflow of `slurm_workflow` with one pack: the noisy experiment's BIV run, trained
    for `epochs` epochs (5 steps each, a checkpoint every 100 steps)."""
    dest = slurm_workflow(copy_workflow, dest)
    config = load_yaml(dest / CONFIG)
    for key in ("sweeps", "figures"):
        config.pop(key, None)
    noisy = config["experiments"]["noisy"]
    noisy["losses"] = ["biv"]
    noisy["training"]["epochs"] = epochs
    config["experiments"] = {"noisy": noisy}
    (dest / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


@pytest.fixture(scope="module", params=[("requeue", 1200), ("time limit", 16000)])
def interrupted_run(request, cluster, copy_workflow, tmp_path_factory) -> tuple[str, Run, Path]:
    """One pack through Slurm, its job requeued or past its time limit once the pack has a
    checkpoint, and the same pack uninterrupted, locally, at the same time. Past a time limit
    the pack must still be training when Slurm enforces it: 80,000 steps (about a minute)."""
    how, epochs = request.param
    name = how.replace(" ", "-")
    slurm_dir = one_pack_workflow(copy_workflow, tmp_path_factory.mktemp(f"{name}-slurm"), epochs)
    local_dir = one_pack_workflow(copy_workflow, tmp_path_factory.mktemp(f"{name}-local"), epochs)
    since = datetime.now()
    local = snakemake(local_dir, "--cores", "1")
    remote = snakemake(slurm_dir, *PROFILES)
    try:
        run = slurm_run(
            slurm_dir, remote, since, after_a_checkpoint(pack_of("noisy/biv/seed1"), how)
        )
    finally:
        local_returncode, local_log = finish(local, local_dir)
    assert local_returncode == 0, f"local run failed:\n{local_log[-6000:]}"
    return how, run, local_dir


def test_a_requeued_or_timed_out_training_resumes_at_the_step_it_stopped(interrupted_run):
    """SIGTERM (Slurm's, at a requeue or the time limit) stops the pack after the step it came
    in, with a checkpoint there: the job run again (requeued under its id by Slurm, or retried
    by Snakemake after a TIMEOUT) resumes after that step, says so, and the runs end with the
    bytes of the uninterrupted local run."""
    how, run, local_dir = interrupted_run
    assert_finished(run)
    assert run.cancelled is not None, "no running training job was there to interrupt"
    pack = pack_of("noisy/biv/seed1")  # the pack that was training then
    assert pack in run.training()[run.cancelled]
    if how == "time limit":
        assert run.slurm[run.cancelled].state == "TIMEOUT", run.slurm[run.cancelled]
    else:  # Slurm ran the job again, under its id: no other job trained the pack
        assert [jid for jid, names in run.training().items() if pack in names] == [run.cancelled]
    # the log of the job's last run (Snakemake clears a job's log when the job runs again)
    job_log = (run.workdir / "results/logs/train" / f"{pack}.log").read_text()
    resumed = re.findall(r"resuming after step (\d+) \(checkpointed there on SIGTERM\)", job_log)
    assert resumed and int(resumed[-1]) >= 100, job_log  # after the first periodic checkpoint
    for name in run_names(run.workdir):
        for file in ("metrics.csv", "predictions.csv"):
            ours = (run_dir(run.workdir, name) / file).read_bytes()
            assert ours == (run_dir(local_dir, name) / file).read_bytes(), (name, file)


def test_jobs_have_no_network_but_the_submit_host_has(cluster, tmp_path, serving):
    """A canary job cannot reach a server on the submit host's loopback (the stand-in for a
    publisher); the submit host can."""
    (tmp_path / "canary.txt").write_text("reached")
    with serving(tmp_path) as base:
        assert urllib.request.urlopen(f"{base}/canary.txt", timeout=10).read() == b"reached"
        code = f"import urllib.request as u; u.urlopen('{base}/canary.txt', timeout=10)"
        wrap = f"{sys.executable} -c {shlex.quote(code)}"
        out = tmp_path / "canary.out"
        job = sh("sbatch", "--wait", "-o", str(out), "--wrap", wrap, timeout=120)
    assert job.returncode != 0
    assert "Connection refused" in out.read_text()


def test_a_url_dataset_is_downloaded_on_the_submit_host_and_trained_through_slurm(
    cluster, data_dir, tmp_path, bike_files, copy_workflow, make_zip, serving
):
    """Bike from a URL (the loopback server): the local download job fetches it; preparation
    (a Slurm job, without network) reads it from the cache; its runs train through Slurm."""
    (tmp_path / "www").mkdir()
    make_zip(tmp_path / "www/bike.zip", bike_files)
    workdir = slurm_workflow(copy_workflow, tmp_path / "work")
    config = load_yaml(workdir / CONFIG)
    for key in ("sweeps", "figures"):
        config.pop(key, None)
    config["experiments"] = {"clean": config["experiments"]["clean"]}
    config["experiments"]["clean"]["dataset"] = "bike"
    with serving(tmp_path / "www") as base:
        config["datasets"] = {"bike": {"kind": "bike", "url": f"{base}/bike.zip"}}
        config["datasets"]["bike"].update(train_size=700, test_size=300)
        (workdir / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
        since = datetime.now()
        run = slurm_run(workdir, snakemake(workdir, *PROFILES), since)
    assert_finished(run)
    assert "localrule download:" in run.log
    assert json.loads((workdir / "results/downloads/bike.zip.json").read_text())["sha256"]
    prepared = {name for members in run.members.values() for rule, name in members}
    assert "dataset=bike" in prepared  # prepared in a Slurm job
    assert run_names(workdir) == {"clean/l2/seed1"}
