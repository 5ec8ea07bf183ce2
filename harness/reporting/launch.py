"""Run the claims on many models, one submitit job per model, then merge them into the replication matrix.

    python -m harness.reporting.launch --model gpt2-small --model pythia-160m,pythia-410m [--executor auto|local|slurm]
        [--partition P] [--gpus-per-job N] [--cpus-per-job N] [--timeout-min M] [--report-dir reports]
        [--jobs-dir DIR] [--run-id ID] [-- extra pytest args]

Every job runs ``python -m pytest claims/ --model <m> --report-dir <dir> --claims-run-id <id> -p
no:cacheprovider <extra>`` in the project root; all jobs share one run id (a fresh uuid4 hex unless
``--run-id``), written into each ``results.json``. On Slurm the jobs are one array (``map_array``); the
``local`` executor runs the same jobs as local processes (``auto``: Slurm where ``srun`` exists, else local).

When every job has ended, the launcher prints each job's model, pytest exit code, status and report, and
writes ``<report-dir>/MATRIX.md`` (``harness.reporting.matrix``) for this run id, always: a model whose job left
no results of this run, or whose every claim test crashed, is a column marked failed. A job is

- *finished*: results of this run were written; pytest's exit code 1 only means some claim test failed
  (a claim did not replicate without an expectation, or an expectation is outdated);
- *crashed*: no ``results.json`` of this run (pytest could not start, the job died or timed out), or one
  in which every claim test crashed.

Exit status: 0 when every job finished with exit code 0, 1 when every job finished but some with failing
claim tests, 2 when a job crashed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]  # the project root (harness/reporting/launch.py)
OUTPUT_TAIL = 4000  # characters of a job's pytest output kept in its result
FINISHED, CRASHED = "finished", "crashed"


@dataclass(frozen=True)
class ClaimsJob:
    """One model's pytest run: what a job receives."""

    model: str  # the --model value
    name: str  # its display name: the report directory and the matrix column
    report_dir: Path
    run_id: str
    pytest_args: tuple[str, ...] = ()

    @property
    def results_path(self) -> Path:
        from harness.verdicts.expectations import model_file_stem

        return self.report_dir / model_file_stem(self.name) / "results.json"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pytest", "claims/", "--model", self.model, "--report-dir", str(self.report_dir),
                "--claims-run-id", self.run_id, "-p", "no:cacheprovider", *self.pytest_args]


@dataclass(frozen=True)
class JobOutcome:
    """What a job returns: pytest's exit code (None when the job died) and the tail of its output."""

    returncode: int | None
    output_tail: str


def run_claims_job(job: ClaimsJob) -> JobOutcome:
    """The job's body (runs on the worker): pytest on the model in the project root; its output is echoed
    into the job's log and its tail returned."""
    completed = subprocess.run(job.command(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(completed.stdout, flush=True)
    return JobOutcome(completed.returncode, completed.stdout[-OUTPUT_TAIL:])


@dataclass(frozen=True)
class JobReport:
    """A job as the launcher reports it once it has ended."""

    job: ClaimsJob
    outcome: JobOutcome
    status: str  # FINISHED or CRASHED
    reason: str = ""  # why it crashed

    def line(self) -> str:
        code = "died" if self.outcome.returncode is None else self.outcome.returncode
        report = self.job.results_path.with_name("REPORT.md") if self.status == FINISHED else "no report of this run"
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.job.name}: exit code {code}, {self.status}{why}; report: {report}"


def display_name(model: str) -> str:
    """The model's display name as the suite gives it (``harness.models.loading.resolve_model``); a value the suite
    will reject keeps its last path component, so its job still has a column."""
    from harness.models.loading import ModelSpecError, resolve_model

    try:
        return resolve_model(model).name
    except ModelSpecError:
        return Path(model).name or model


def judge(job: ClaimsJob, outcome: JobOutcome) -> JobReport:
    """Finished when this run's results.json exists with something measured; crashed otherwise."""
    from harness.reporting.matrix import load_results

    loaded = load_results([job.results_path]) if job.results_path.is_file() else []
    if not loaded:
        return JobReport(job, outcome, CRASHED, "no results.json")
    results = loaded[0]
    if results.problem:
        return JobReport(job, outcome, CRASHED, f"results.json {results.problem}")
    if results.run_id != job.run_id:
        return JobReport(job, outcome, CRASHED, f"results.json is from another run ({results.run_id or 'none'})")
    if results.crashed:
        return JobReport(job, outcome, CRASHED, "every claim test crashed")
    return JobReport(job, outcome, FINISHED)


def executor_for(kind: str, jobs_dir: Path, *, partition: str | None, gpus: int, cpus: int | None,
                 timeout_min: int, array_size: int):
    """A submitit executor: ``local`` (processes on this machine), ``slurm``, or ``auto`` (Slurm where
    available)."""
    import submitit

    cluster = ("slurm" if submitit.SlurmExecutor.affinity() > 0 else "local") if kind == "auto" else kind
    executor = submitit.AutoExecutor(folder=jobs_dir, cluster=cluster)
    parameters: dict[str, object] = {"name": "sentiment-claims", "timeout_min": timeout_min, "gpus_per_node": gpus,
                                     "slurm_array_parallelism": array_size}
    if cpus is not None:
        parameters["cpus_per_task"] = cpus
    if partition is not None:
        parameters["slurm_partition"] = partition
    executor.update_parameters(**parameters)
    return executor


def run_jobs(jobs: Sequence[ClaimsJob], executor) -> list[JobReport]:
    """Submit every job (one array) and wait for all; a job that dies is a crashed job, not an exception."""
    submitted = executor.map_array(run_claims_job, jobs)
    print(f"submitted {len(submitted)} jobs: " + ", ".join(f"{j.name} ({s.job_id})" for j, s in zip(jobs, submitted)),
          flush=True)
    reports = []
    for job, handle in zip(jobs, submitted):
        try:
            outcome = handle.result()
        except Exception as error:  # noqa: BLE001  submitit's FailedJobError, UncompletedJobError, ...
            outcome = JobOutcome(None, f"{type(error).__name__}: {error}"[-OUTPUT_TAIL:])
        reports.append(judge(job, outcome))
    return reports


def write_run_matrix(reports: Sequence[JobReport], report_dir: Path, run_id: str) -> Path:
    """MATRIX.md of this run: one column per job's model, a crashed job's column marked failed."""
    from harness.reporting.matrix import build_matrix, load_results, write_matrix

    names = list(dict.fromkeys(r.job.name for r in reports))
    paths = [r.job.results_path for r in reports if r.job.results_path.is_file()]
    matrix = build_matrix(load_results(paths), run_id=run_id, expected_models=names)
    return write_matrix(matrix, report_dir)


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's options, and the pytest arguments after ``--``."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m harness.reporting.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True,
                        help="a --model value of the suite; repeat it or give a comma-separated list")
    parser.add_argument("--executor", choices=("auto", "local", "slurm"), default="auto")
    parser.add_argument("--partition", default=None, help="Slurm partition")
    parser.add_argument("--gpus-per-job", type=int, default=0,
                        help="GPUs per job (default 0; the local executor hides the GPUs a job was not given)")
    parser.add_argument("--cpus-per-job", type=int, default=None, help="CPUs per job (Slurm)")
    parser.add_argument("--timeout-min", type=int, default=240, help="per job (default 240)")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"), help="default reports/")
    parser.add_argument("--jobs-dir", type=Path, default=None,
                        help="submitit's folder of job logs (default .submitit/<run id> in the project root)")
    parser.add_argument("--run-id", default=None, help="default: a fresh uuid4 hex")
    args = parser.parse_args(argv[:split])
    args.model = list(dict.fromkeys(m.strip() for value in args.model for m in value.split(",") if m.strip()))
    return args, argv[split + 1:]


def main(argv: Sequence[str] | None = None) -> int:
    args, pytest_args = parse_args(sys.argv[1:] if argv is None else argv)
    run_id = args.run_id or uuid.uuid4().hex
    report_dir = args.report_dir.resolve()
    jobs_dir = (args.jobs_dir or ROOT / ".submitit" / run_id).resolve()
    models = [str(Path(m).resolve()) if Path(m).exists() else m for m in args.model]  # jobs run in the root
    jobs = [ClaimsJob(model, display_name(model), report_dir, run_id, tuple(pytest_args)) for model in models]
    duplicates = {job.name for job in jobs if [j.name for j in jobs].count(job.name) > 1}
    if duplicates:
        print(f"harness.reporting.launch: two --model values share a report name: {', '.join(sorted(duplicates))}",
              file=sys.stderr)
        return 2
    executor = executor_for(args.executor, jobs_dir, partition=args.partition, gpus=args.gpus_per_job,
                            cpus=args.cpus_per_job, timeout_min=args.timeout_min, array_size=len(jobs))
    print(f"run {run_id}: {len(jobs)} jobs on {executor.cluster}; job logs in {jobs_dir}", flush=True)
    reports = run_jobs(jobs, executor)
    for report in reports:
        print(report.line())
        if report.status == CRASHED:
            tail = report.outcome.output_tail.strip().splitlines()[-15:]
            print("\n".join(f"    | {line}" for line in tail))
    print(f"replication matrix: {write_run_matrix(reports, report_dir, run_id)}")
    if any(r.status == CRASHED for r in reports):
        return 2
    return 1 if any(r.outcome.returncode for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
