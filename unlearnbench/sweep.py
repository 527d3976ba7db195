"""Run a grid of cells from a sweep file: planned, resumable, parallel (joblib processes or a Dask cluster).

    python -m unlearnbench.sweep --config benchmarks/mnist_quick.toml [--jobs N] [--jobs-per-gpu N]
                                 [--backend loky|dask] [--scheduler ADDRESS] [--dry-run] [--results DIR]

The grid becomes jobs in dependency order: each original θ* is trained once per (data set, model, seed, recipe),
each retrained oracle once per (…, forget class); unlearning cells follow. Every job is idempotent — it takes what it
needs from the checkpoint cache, training it under a file lock if it is missing — so jobs can run on any worker in any
order and a cell simply waits for the original another worker is training. A finished cell is a record file in the
results store and is never run again: rerunning a sweep resumes it, and a finished sweep reruns in seconds.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from . import progress
from .config import Cell, Setup
from .errors import UsageError, WriteError
from .files import atomic_write_json, pid_alive
from .plan import ORACLE, Sweep
from .store import RecordStore

if TYPE_CHECKING:
    import torch

    from .cache import CheckpointCache
    from .runner import Env, Runner

# torch and the registries load when work starts (inside the functions below): the command (unlearnbench.cli.sweep)
# answers `--help` and a mistyped command line or sweep file before they load.

log = logging.getLogger("unlearnbench")


# --------------------------------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    kind: str  # "original" (train θ*) or "cell" (run one cell, write its record)
    setup: Setup
    cell: Cell | None = None

    @property
    def label(self) -> str:
        if self.cell is not None:
            return self.cell.label
        s = self.setup
        return f"{s.data.name}/{s.model.name}/seed {s.seed}/original θ*"


@dataclass(frozen=True)
class Outcome:
    label: str
    status: str  # "done", "skipped" (already recorded), "trained", "cached", "failed"
    seconds: float
    detail: str = ""


_RUNNERS: dict[Env, Runner] = {}


def shared_runner(env: Env) -> Runner:
    """One Runner per worker process and device, so that data and originals stay loaded across jobs."""
    from .runner import Runner
    if env not in _RUNNERS:
        _RUNNERS[env] = Runner(env)
    return _RUNNERS[env]


def assign_devices(n_gpus: int, jobs_per_gpu: int) -> list[str]:
    """The GPU slots of a sweep: `jobs_per_gpu` per GPU, slot i on cuda:(i mod n_gpus); none without a GPU.

    Round-robin rather than blocked (cuda:(i // jobs_per_gpu)): a job takes the first free slot, so the first
    n_gpus jobs land on different GPUs and a GPU gets a second job only once every GPU has one."""
    if n_gpus < 0 or jobs_per_gpu < 1:
        raise ValueError(f"n_gpus {n_gpus} must be >= 0 and jobs_per_gpu {jobs_per_gpu} >= 1")
    return [f"cuda:{i % n_gpus}" for i in range(n_gpus * jobs_per_gpu)]


def _slot_lock_name(index: int, n_gpus: int) -> str:
    return f".gpu{index % n_gpus}.slot{index // n_gpus}.lock"


def take_slot(lock_dir: Path, n_gpus: int, jobs_per_gpu: int) -> tuple[str, Any] | None:
    """The first free GPU slot (its device, and the held lock to release), or None when all are taken. Slots are
    lock files in `lock_dir`, so sweeps sharing a cache directory share the slots too."""
    from filelock import FileLock, Timeout
    for i, device in enumerate(assign_devices(n_gpus, jobs_per_gpu)):
        lock = FileLock(str(lock_dir / _slot_lock_name(i, n_gpus)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        return device, lock
    return None


@contextmanager
def _device_slot(env: Env, jobs_per_gpu: int) -> Iterator[Env]:
    """On CUDA with the default device, at most `jobs_per_gpu` jobs per GPU: a job holds a slot's lock file while it
    runs, on that slot's GPU (`assign_devices`). An explicit device (`--device cuda:1`) takes every job."""
    import torch
    if env.device != "auto" or not torch.cuda.is_available():
        yield env
        return
    lock_dir = Path(env.cache_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    while (slot := take_slot(lock_dir, torch.cuda.device_count(), jobs_per_gpu)) is None:
        time.sleep(1.0)
    device, lock = slot
    try:  # one GPU: "auto" is already it, and keeps the Runner (data on the device) that planned the sweep
        yield env if torch.cuda.device_count() == 1 else replace(env, device=device)
    finally:
        lock.release()


def execute(job: Job, env: Env, results: str, threads: int, jobs_per_gpu: int = 1,
            progress_mode: str = "quiet") -> Outcome:
    """Run one job in a worker. Never raises: a failure is an Outcome with the error's last line. `progress_mode`:
    how the job's training shows its progress (`unlearnbench.progress`; "lines" in a sweep: workers share stderr)."""
    import torch
    start = time.perf_counter()
    logging.getLogger("unlearnbench").setLevel(logging.WARNING)
    progress.configure(progress_mode, prefix=f"  [{job.label}] ")
    if threads > 0:
        torch.set_num_threads(threads)
    store = RecordStore(Path(results))
    try:
        with _device_slot(env, jobs_per_gpu) as local:
            runner = shared_runner(local)
            if job.kind == "original":
                _, meta, hit = runner.original(job.setup)
                return Outcome(job.label, "cached" if hit else "trained", time.perf_counter() - start,
                               f"{meta['seconds']:.0f} s of training")
            assert job.cell is not None
            with store.lock(job.cell.key):
                if store.has(job.cell.key):
                    return Outcome(job.label, "skipped", time.perf_counter() - start)
                record = runner.run(job.cell)
                if runner.device.type == "cuda":  # its times were measured beside up to this many jobs on its GPU
                    record["jobs_per_gpu"] = jobs_per_gpu
                store.write(record)
            detail = f"A_Df {record['acc_forget']:.2f} A_Dr {record['acc_retain']:.2f}"
            return Outcome(job.label, "done", time.perf_counter() - start, detail)
    except Exception as exc:  # noqa: BLE001 - one failed job must not stop the sweep
        name = job.cell.key if job.cell is not None else job.setup.key
        path = store.root / "logs" / f"{name}.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{job.label}\n{traceback.format_exc()}")
            where = f"traceback: {path}"
        except OSError as log_exc:  # a full disk fails the log too: the line below is all there is
            where = f"no traceback log: {path}: {log_exc.strerror}"
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
        return Outcome(job.label, "failed", time.perf_counter() - start, f"{type(exc).__name__}: {line} ({where})")


# --------------------------------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    jobs: list[Job]
    originals: int
    originals_cached: int
    cells: int
    cells_done: int
    oracles: int
    oracles_cached: int
    estimate_s: float | None = None
    corrupt: list[tuple[Path, str]] = field(default_factory=list)  # record files that are not whole records, and why

    @property
    def originals_to_train(self) -> int:
        """Not `originals - originals_cached`: an original whose cells are all recorded is not trained."""
        return sum(j.kind == "original" for j in self.jobs)


def make_plan(sweep: Sweep, store: RecordStore, cache: CheckpointCache, runner: Runner) -> Plan:
    """Setup by setup (data set, model, seed): its original, then its retrain cells (the oracle every other cell of
    that class is measured against), then its other cells. Completing one seed before the next means that a sweep
    stopped early leaves whole tables for the seeds it did, not scattered cells. Recorded cells are not jobs, and an
    original whose cells are all recorded is not trained (results moved to a machine with an empty cache)."""
    from .registry import get_method
    setups = sweep.setups
    todo: list[Cell] = []
    corrupt: list[tuple[Path, str]] = []
    for c in sweep.cells:
        rec, problem = store.read(c.key)
        if rec is None:  # none yet, or a file that is not its whole record (empty, partial, foreign): run it
            todo.append(c)
        if problem:
            corrupt.append((store.path(c.key), problem))
    by_setup: dict[str, list[Cell]] = {s.key: [] for s in setups}
    for c in todo:
        by_setup[c.setup.key].append(c)
    jobs: list[Job] = []
    for s in setups:
        jobs += [Job("original", s)] if by_setup[s.key] and not cache.contains(s.key) else []
        oracles_first = sorted(by_setup[s.key], key=lambda c: not get_method(c.method).cached)  # stable
        jobs += [Job("cell", s, c) for c in oracles_first]
    oracles = {k for k in (oracle_key(runner, c) for c in sweep.cells) if k}
    return Plan(jobs, len(setups), sum(cache.contains(s.key) for s in setups), len(sweep.cells),
                len(sweep.cells) - len(todo), len(oracles), sum(cache.contains(k) for k in oracles), corrupt=corrupt)


def oracle_key(runner: Runner, cell: Cell) -> str | None:
    """The cached oracle this cell trains or loads: a retrain cell's own model, or, for any other cell measured
    against the oracle (`eval.oracle`), the retrain of its class, which a share of a grid without its retrain cells
    (`--only method=pbu`) still trains."""
    from .registry import get_method
    if get_method(cell.method).cached:
        return runner.method_key(cell)
    return runner.method_key(runner.oracle_cell(cell)) if cell.eval.oracle else None


#: The planner's calibration: warm-up steps, then timed steps (each timed alone; their median counts).
WARMUP_STEPS, TIMED_STEPS = 2, 9
CALIBRATION_FILE = "calibration.json"


def _calibration_key(runner: Runner, setup: Setup) -> str:
    """What a calibration holds for: this host and device at this thread count, the model, its input, the batch."""
    import socket

    import torch

    from .config import stable_hash
    from .runtime import describe_device, versions
    return stable_hash({"host": socket.gethostname(), "device": describe_device(runner.device),
                        "threads": torch.get_num_threads(), "torch": versions()["torch"], "data": setup.data,
                        "model": setup.model, "batch": min(setup.train.batch_size, 64),
                        "precision": setup.train.precision, "channels_last": setup.train.channels_last,
                        "steps": [WARMUP_STEPS, TIMED_STEPS]})


def _sample_seconds(runner: Runner, setup: Setup) -> float:
    """Seconds per training sample (forward + backward) of this model on this device and thread count: the median
    of TIMED_STEPS single steps after WARMUP_STEPS, measured once per host and kept in the checkpoint cache
    (`calibration.json`), so that two plans on one host give one estimate (a few steps timed anew each time swung
    with whatever else the host was running)."""
    import statistics

    from .train import cross_entropy, make_optimizer, train_steps
    path = Path(runner.cache.root) / CALIBRATION_FILE
    key = _calibration_key(runner, setup)
    known = _read_calibration(path)
    if isinstance(known.get(key), dict) and "seconds_per_sample" in known[key]:
        return float(known[key]["seconds_per_sample"])
    model = runner.new_model(setup, 0).train()
    data = runner.data(setup.data).sample_set("train")
    batch = min(setup.train.batch_size, 64)
    batches = list(data.batches(batch))[: WARMUP_STEPS + TIMED_STEPS]
    opt = make_optimizer(model.parameters(), "sgd", 1e-9)
    runtime = runner.runtime(setup.train)
    train_steps(model, opt, batches[:WARMUP_STEPS], cross_entropy(), runtime)
    per_sample = []
    for b in batches[WARMUP_STEPS:] or batches[-1:]:
        runtime.sync()
        start = time.perf_counter()
        train_steps(model, opt, [b], cross_entropy(), runtime)
        runtime.sync()
        per_sample.append((time.perf_counter() - start) / max(len(b.y), 1))
    seconds = statistics.median(per_sample)
    known = _read_calibration(path)
    known[key] = {"seconds_per_sample": seconds, "model": setup.model.name, "dataset": setup.data.name,
                  "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "how": f"median of {len(per_sample)} single training steps of batch {batch} after {WARMUP_STEPS} "
                         "warm-up steps"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # a first plan on this host: the cache may not exist yet
        atomic_write_json(path, known)
    except (OSError, WriteError):  # a read-only cache: the estimate stands; it is measured again next time
        pass
    return seconds


def _read_calibration(path: Path) -> dict[str, Any]:
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def estimate(plan: Plan, runner: Runner) -> float:
    """Rough seconds for the plan's jobs on this device: each job's sample-steps × measured seconds per sample."""
    from .registry import get_method
    rate: dict[tuple[Any, ...], float] = {}
    oracles: set[str] = set()
    total = 0.0
    for job in plan.jobs:
        s = job.setup
        k = (s.data, s.model, s.train.precision, s.train.channels_last)
        if k not in rate:
            rate[k] = _sample_seconds(runner, s)
        data = runner.data(s.data)
        n_train, n_test = len(data.train.labels), len(data.test.labels)
        if job.kind == "original":
            total += rate[k] * n_train * s.train.epochs
            continue
        cell = job.cell
        assert cell is not None
        sizes = runner.sizes(cell)
        n_forget = sizes.forget
        evaluation = (n_test + n_forget + min(cell.eval.mia_members or n_train, n_train)) / 3  # forward ≈ 1/3
        oracle = oracle_key(runner, cell)
        if oracle and oracle not in oracles and not runner.cache.contains(oracle):  # trained by this job
            oracles.add(oracle)
            total += rate[k] * get_method(ORACLE).cost(cell.oracle, sizes)
        if not get_method(cell.method).cached:  # a cached method's cost is its oracle's, counted above
            total += rate[k] * get_method(cell.method).cost(cell.hparams, sizes)
        total += rate[k] * evaluation
    return total


_duration = progress.duration


@dataclass(frozen=True)
class Workers:
    """How many jobs run at once, and on which devices."""
    n_jobs: int
    n_gpus: int  # GPUs the jobs spread over; 0 on a CPU
    jobs_per_gpu: int
    local: bool  # False: a remote Dask cluster's workers, whose GPUs this process cannot see

    @property
    def slots(self) -> list[str]:
        return assign_devices(self.n_gpus, self.jobs_per_gpu)

    def describe(self) -> str:
        if not self.local:
            return f"{self.n_jobs} at once on the Dask cluster's workers, up to {self.jobs_per_gpu} per GPU on each"
        if not self.n_gpus:
            import torch
            threads = max(1, (os.cpu_count() or 1) // self.n_jobs) if self.n_jobs > 1 else torch.get_num_threads()
            return f"{self.n_jobs} on the CPU, {threads} thread(s) each"
        return (f"{self.n_jobs} ({self.jobs_per_gpu} per GPU on {self.n_gpus} GPU(s); GPU slots "
                f"{', '.join(self.slots)})")


def visible_gpus(env: Env, device: torch.device) -> int:
    """The GPUs a sweep spreads its jobs over: all visible ones with the default device, one with an explicit
    `--device cuda[:i]`, none on a CPU."""
    import torch
    if device.type != "cuda":
        return 0
    return torch.cuda.device_count() if env.device == "auto" else 1


def plan_workers(n_gpus: int, jobs: int, jobs_per_gpu: int, local: bool = True) -> Workers:
    """The workers of a sweep from `--jobs` (0: the default) and `--jobs-per-gpu`: on GPUs, one per slot by default;
    on a CPU, 1 by default, and `--jobs-per-gpu` above 1 is refused (it would mean nothing there)."""
    if jobs < 0 or jobs_per_gpu < 1:
        raise UsageError(f"--jobs must be >= 0 and --jobs-per-gpu >= 1; got {jobs} and {jobs_per_gpu}")
    if not n_gpus:
        if jobs_per_gpu > 1 and local:
            raise UsageError(f"--jobs-per-gpu {jobs_per_gpu}: no GPU here; on a CPU, --jobs N runs N jobs at once")
        return Workers(jobs or 1, 0, jobs_per_gpu, local)
    slots = n_gpus * jobs_per_gpu
    if local and jobs > slots:
        raise UsageError(f"--jobs {jobs} is more than {jobs_per_gpu} job(s) per GPU x {n_gpus} GPU(s): the other "
                         "workers would only wait for a GPU; raise --jobs-per-gpu instead")
    return Workers(jobs or slots, n_gpus, jobs_per_gpu, local)


def describe(sweep: Sweep, plan: Plan, results: Path, device: torch.device, workers: Workers | None = None) -> str:
    models = sorted({c.setup.model.name for c in sweep.cells})
    lines = [f"sweep {sweep.name!r}: {plan.cells} cells ({', '.join(sorted({c.setup.data.name for c in sweep.cells}))}"
             f"; {', '.join(models)}; {len({c.setup.seed for c in sweep.cells})} seed(s); "
             f"{len({c.method for c in sweep.cells})} methods)",
             f"  original models : {plan.originals} ({plan.originals_cached} cached, "
             f"{plan.originals_to_train} to train)",
             f"  retrained oracles: {plan.oracles} ({plan.oracles_cached} cached)",
             f"  unlearning cells : {plan.cells} ({plan.cells_done} recorded, {plan.cells - plan.cells_done} to run)",
             f"  jobs             : {len(plan.jobs)}",
             *([f"  workers          : {workers.describe()}"] if workers else []),
             f"  results          : {results}"]
    if plan.estimate_s is not None:
        lines.append(f"  estimated cost   : ~{_duration(plan.estimate_s)} of compute on {device} (rough: each "
                     "model's seconds per training image on this host, the median of "
                     f"{TIMED_STEPS} timed steps measured once and kept in the cache's {CALIBRATION_FILE}, times "
                     "each job's sample count)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------------------------------------------------
#: Parallel jobs (and jobs per GPU): far above any machine's or cluster's useful count; a typo is refused.
MAX_JOBS = 1024

#: Seconds a sweep waits for its Dask scheduler to answer before refusing to start.
SCHEDULER_TIMEOUT = 5


def connect_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> Any:
    """A client of the Dask scheduler at `address`, connected now (before the sweep writes anything), or a UsageError
    in one line when none answers within `timeout` seconds."""
    import dask.config
    from dask.distributed import Client
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
            return Client(address, timeout=f"{timeout}s")  # the default client, which joblib's dask backend uses
    except Exception as exc:  # noqa: BLE001 - a bad address, a refused or timed-out connection: the same answer
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UsageError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s ({reason})"
                         ) from None


def run_jobs(jobs: Sequence[Job], env: Env, results: Path, n_jobs: int, backend: str,
             scheduler: str | None, jobs_per_gpu: int = 1, client: Any = None,
             progress_mode: str = "quiet") -> Iterator[Outcome]:
    """Outcomes as jobs finish. Jobs are dispatched lazily in plan order, so dependencies are usually ready.
    `client`: a Dask client already connected to `scheduler` (`connect_scheduler`)."""
    import joblib
    cores = os.cpu_count() or 1
    threads = max(1, cores // n_jobs) if n_jobs > 1 else 0
    calls = (joblib.delayed(execute)(job, env, str(results), threads, jobs_per_gpu, progress_mode) for job in jobs)
    if backend == "dask":
        from dask.distributed import Client, LocalCluster
        if client is None:
            client = Client(scheduler) if scheduler else Client(LocalCluster(
                n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None))
        try:
            with joblib.parallel_config(backend="dask", wait_for_workers_timeout=60):
                yield from joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                           pre_dispatch="n_jobs")(calls)
        finally:
            client.close()
        return
    with joblib.parallel_config(backend="loky", initializer=watch_parent, initargs=(os.getpid(),)):
        yield from joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered", pre_dispatch="n_jobs")(calls)


#: Seconds between a worker's checks that the sweep's main process still runs.
WATCH_EVERY = 0.5


def watch_parent(pid: int) -> None:
    """Loky worker initializer: a daemon thread ends this worker as soon as the sweep's main process `pid` is gone,
    SIGKILL included. Without it a worker finishes its job (minutes) and writes its files after its sweep died.
    A worker killed so leaves at most a temporary file, which the cache and the store remove once its writer is
    dead. (Not PR_SET_PDEATHSIG: that fires when the *thread* that started the worker ends, and loky starts workers
    from its manager thread too.)"""

    def watch() -> None:
        child = os.getppid() == pid  # loky's workers are the main process's children; else watch the PID itself
        while (os.getppid() == pid) if child else pid_alive(pid):
            time.sleep(WATCH_EVERY)
        os._exit(70)

    threading.Thread(target=watch, name="unlearnbench-watch-parent", daemon=True).start()


if __name__ == "__main__":  # `python -m unlearnbench.sweep`: the command (unlearnbench.cli.sweep), its documented name
    from .cli.sweep import main
    sys.exit(main())
