"""Batch throughput: what grading a class costs per submission, set beside the
floor of running the reference notebook and its training job with none of
the grader around them, and what one worker of the pool holds in memory.

Run from the repository root:

    .venv/bin/python benchmarks/batch_throughput.py [--copies M] [--repeats R]

Three measurements, in one run, on the same machine:

- floor: the reference notebook run by a plain nbclient ``NotebookClient``
  against the emulator, its training job run as a cold ``python train.py``;
- grader-1 and grader-2: ``grade_class`` over M copies of the reference
  solution with one and with two workers.

The reference scores are computed first, into a private cache directory, so
no run depends on (or writes to) the user's cache. While the two-worker
batch runs, every process of each worker's tree is sampled for memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from grader import batch
from grader.data import Splits, load_splits, write_csv
from grader.emulator import Emulator, student_environment
from grader.grade import emulator_for, reference_scores
from grader.results import GradeResult, ModelScores
from grader.rubric import Rubric, load_rubric

REPOSITORY = Path(__file__).resolve().parent.parent
REFERENCE = REPOSITORY / "reference_solution"
NOTEBOOK = REFERENCE / "assignment2.ipynb"
SAMPLE_SECONDS = 0.2
GIB = 1024**3
MIB = 1024**2

# The targets the figures are held to.
MAX_BATCH_SHARE_OF_FLOOR = 0.5
MIN_SCALING_TWO_WORKERS = 1.7
MAX_WORKER_BYTES = GIB


@dataclasses.dataclass
class Measurement:
    """One configuration's runs: seconds per submission and whole-run walls."""

    label: str
    per_submission: list[float] = dataclasses.field(default_factory=list)
    walls: list[float] = dataclasses.field(default_factory=list)
    copies: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.per_submission)

    @property
    def amortised(self) -> float:
        return statistics.median(self.walls) / self.copies

    @property
    def per_minute(self) -> float:
        return 60.0 / self.amortised


# -- the class ------------------------------------------------------------------


def lay_out_class(class_dir: Path, copies: int) -> list[batch.Entry]:
    """M identical submissions, so every difference in time is the grader's."""
    class_dir.mkdir(parents=True)
    for number in range(1, copies + 1):
        shutil.copytree(REFERENCE, class_dir / f"copy-{number:02d}",
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return batch.discover(class_dir)


# -- the floor ------------------------------------------------------------------


def train_cold(emulator: Emulator) -> None:
    """Make the training service run ``python train.py`` rather than fork a
    warm interpreter; ``reset`` builds a new service, so call it after each."""
    service = emulator.training
    service.settings = dataclasses.replace(service.settings, warm=None)


def run_floor_submission(
    emulator: Emulator, rubric: Rubric, splits: Splits, run_dir: Path
) -> float:
    """One submission's bare cost: working copy, account, notebook, job."""
    started = time.monotonic()
    workdir = run_dir / "work"
    shutil.copytree(REFERENCE, workdir, ignore=shutil.ignore_patterns("__pycache__"))
    for split, relative in rubric.fixtures.files.items():
        write_csv(splits.split(split), workdir / relative)

    emulator.reset(work_root=run_dir)
    train_cold(emulator)
    for split, uri in rubric.fixtures.s3.items():
        body = splits.split(split).to_csv(header=False, index=False).encode()
        emulator.seed_object(uri, body)
    env = student_environment(emulator, run_dir / "home")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(workdir)}})
    with open(os.devnull, "wb") as devnull:
        client.execute(env=env, cwd=str(workdir), stdout=devnull, stderr=devnull)
    finished = emulator.training.wait_all(timeout=rubric.timeouts.job_seconds + 30)
    elapsed = time.monotonic() - started

    runs = list(emulator.training.runs.values())
    if not finished or [r.status for r in runs] != ["Completed"]:
        states = [(r.name, r.status, r.failure_reason) for r in runs]
        raise RuntimeError(f"floor run in {run_dir}: expected one Completed job, got {states}")
    if emulator.training.settings.warm is not None:
        raise RuntimeError("floor run: the training job was forked from a warm interpreter")
    return elapsed


def measure_floor(rubric: Rubric, copies: int, scratch: Path, into: Measurement) -> float:
    """M floor runs on one emulator, as a worker would hold it; returns the
    emulator's start-up seconds, which the per-submission times exclude."""
    splits = load_splits(rubric.fixtures.dataset)
    started = time.monotonic()
    with emulator_for(rubric, scratch / "emulator") as emulator:
        # start() launches both warm interpreters; the floor uses neither, and
        # left running they would import pandas and xgboost during run one.
        emulator.warm.close()
        emulator.kernel_warm.close()
        start_up = time.monotonic() - started
        for number in range(1, copies + 1):
            into.per_submission.append(
                run_floor_submission(emulator, rubric, splits, scratch / f"run-{number:02d}")
            )
    into.walls.append(time.monotonic() - started)
    into.copies = copies
    return start_up


# -- the grader -----------------------------------------------------------------


class WorkerMemory:
    """Samples the memory of each pool worker's process tree: the worker, its
    emulator's warm interpreters, the kernel and the jobs forked from them.

    RSS counts pages shared by forks once per process, so the sum overstates
    a tree; PSS splits each shared page among its sharers, USS counts only
    private pages.
    """

    def __init__(self) -> None:
        self.peaks: dict[int, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me = psutil.Process()

    def __enter__(self) -> "WorkerMemory":
        # A fresh thread per batch; the peaks carry over between repeats.
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _workers(self) -> list[psutil.Process]:
        workers = []
        for child in self._me.children():
            try:
                if any("spawn_main" in part for part in child.cmdline()):
                    workers.append(child)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return workers

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            for worker in self._workers():
                self._sample_tree(worker)

    def _sample_tree(self, worker: psutil.Process) -> None:
        totals = {"rss": 0, "pss": 0, "uss": 0, "processes": 0}
        try:
            tree = [worker, *worker.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return
        for member in tree:
            try:
                memory = member.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            totals["rss"] += memory.rss
            totals["pss"] += getattr(memory, "pss", 0)
            totals["uss"] += memory.uss
            totals["processes"] += 1
        peak = self.peaks.setdefault(worker.pid, dict.fromkeys(totals, 0))
        for key, value in totals.items():
            peak[key] = max(peak[key], value)

    def peak(self, key: str) -> int:
        return max((p[key] for p in self.peaks.values()), default=0)


def measure_grader(
    entries: list[batch.Entry],
    out_dir: Path,
    reference: ModelScores,
    workers: int,
    into: Measurement,
) -> list[GradeResult]:
    """One ``grade_class`` run; the wall includes starting the pool and each
    worker's emulator, which a real batch pays too."""
    started = time.monotonic()
    results = batch.grade_class(entries, out_dir, rubric_path=None, reference=reference,
                                workers=workers, force=True)
    into.walls.append(time.monotonic() - started)
    into.per_submission.extend(r.timings.total for r in results)
    into.copies = len(entries)
    return results


def check_scores(label: str, results: list[GradeResult]) -> str:
    """Timings of a broken run mean nothing: say what each copy scored."""
    scores = sorted({f"{r.score:g}/{r.max_score:g}" for r in results})
    errors = [f"{r.submission}: {r.error}" for r in results if r.status != "graded"]
    lost = [r.submission for r in results if r.score < r.max_score]
    verdict = "all full marks" if not lost and not errors else f"NOT full marks: {lost}"
    line = f"  {label}: {len(results)} results, scores {', '.join(scores)} ({verdict})"
    return line + "".join(f"\n    error {e}" for e in errors)


# -- the report -----------------------------------------------------------------


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def print_report(
    floor: Measurement,
    graders: list[Measurement],
    memory: WorkerMemory,
    notes: list[str],
) -> None:
    print()
    header = (f"{'':9} {'median s/sub':>12} {'amortised s/sub':>15} {'subs/min':>9} "
              f"{'vs floor':>9}  target: amortised <= {MAX_BATCH_SHARE_OF_FLOOR:g} x floor")
    print(header)
    print("-" * len(header))
    floor_s = floor.median
    print(f"{floor.label:9} {floor_s:12.2f} {floor.amortised:15.2f} {60.0 / floor_s:9.2f} "
          f"{1.0:9.2f}  (reference: median of {len(floor.per_submission)} runs)")
    for row in graders:
        share = row.amortised / floor_s
        print(f"{row.label:9} {row.median:12.2f} {row.amortised:15.2f} {row.per_minute:9.2f} "
              f"{share:9.2f}  {verdict(share <= MAX_BATCH_SHARE_OF_FLOOR)}")
    print("(vs floor = amortised s/sub / floor median s/sub; floor subs/min = 60 / median;"
          " floor amortised includes its one emulator start)")

    one, two = graders
    scaling = two.per_minute / one.per_minute
    print()
    passed = scaling >= MIN_SCALING_TWO_WORKERS
    print(f"2 workers vs 1 (throughput): {scaling:.2f}x   "
          f"target >= {MIN_SCALING_TWO_WORKERS:g}x  {verdict(passed)}")

    print()
    print(f"peak memory per worker (max over {len(memory.peaks)} workers, whole process tree, "
          f"sampled every {SAMPLE_SECONDS:g} s), target < {MAX_WORKER_BYTES / GIB:g} GiB:")
    for key, meaning in (("rss", "RSS sum (counts shared pages once per process)"),
                         ("pss", "PSS sum (shared pages split among sharers)"),
                         ("uss", "USS sum (private pages only)")):
        peak = memory.peak(key)
        print(f"  {key.upper()}: {peak / MIB:8.0f} MiB  "
              f"{verdict(0 < peak < MAX_WORKER_BYTES)}  {meaning}")
    print(f"  processes in the largest tree: {memory.peak('processes')}")
    for pid, peak in sorted(memory.peaks.items()):
        sizes = ", ".join(f"{key.upper()} {peak[key] / MIB:.0f} MiB"
                          for key in ("rss", "pss", "uss"))
        print(f"  worker {pid}: {sizes}, up to {peak['processes']} processes")

    print()
    for note in notes:
        print(note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="submissions per batch (M)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="times each configuration is measured (R); medians are reported")
    args = parser.parse_args()
    if args.copies < 1 or args.repeats < 1:
        parser.error("--copies and --repeats must be at least 1")

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    begun = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="batch-throughput-"))
    os.environ["GRADER_CACHE_DIR"] = str(scratch / "cache")
    notes = [
        f"cores: {os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical, "
        f"{len(os.sched_getaffinity(0))} usable by this process",
        f"copies M = {args.copies}, repeats R = {args.repeats}",
    ]
    try:
        rubric = load_rubric(None)
        started = time.monotonic()
        reference = reference_scores(rubric)
        notes.append(f"reference scores (computed once, not cached before): "
                     f"{time.monotonic() - started:.2f} s; validation AUC "
                     f"{reference.validation_auc}, holdout AUC {reference.holdout_auc}")

        floor = Measurement("floor")
        graders = [Measurement("grader-1"), Measurement("grader-2")]
        memory = WorkerMemory()
        entries = lay_out_class(scratch / "class", args.copies)
        for repeat in range(1, args.repeats + 1):
            start_up = measure_floor(rubric, args.copies, scratch / f"floor-{repeat}", floor)
            notes.append(f"repeat {repeat}: floor emulator start-up {start_up:.2f} s "
                         f"(excluded from floor s/sub)")
            results = measure_grader(entries, scratch / f"out-1-{repeat}", reference, 1,
                                     graders[0])
            notes.append(check_scores(f"repeat {repeat}, grader-1", results))
            with memory:
                results = measure_grader(entries, scratch / f"out-2-{repeat}", reference, 2,
                                         graders[1])
            notes.append(check_scores(f"repeat {repeat}, grader-2", results))
        notes.append(f"floor runs (s): {', '.join(f'{s:.2f}' for s in floor.per_submission)}")
        for row in graders:
            totals = ", ".join(f"{s:.2f}" for s in row.per_submission)
            walls = ", ".join(f"{s:.2f}" for s in row.walls)
            notes.append(f"{row.label} timings.total (s): {totals}; wall (s): {walls}")
        print_report(floor, graders, memory, notes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"total benchmark wall time: {time.monotonic() - begun:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
