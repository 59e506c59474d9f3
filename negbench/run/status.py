"""``negbench status``: per job, the trials of its study and the seeds already stored."""

from __future__ import annotations

from typing import Any

import optuna

from negbench.run.plan import Job, Plan
from negbench.run.preflight import Validated, validate_plan
from negbench.run.suite import SuiteRunner

__all__ = ["job_status"]


def job_status(plan: Plan, validated: Validated | None = None) -> list[dict[str, Any]]:
    """Per job: trials complete / pruned / running / failed, seeds done, best dev metric (for `negbench status`)."""
    from optuna.trial import TrialState

    from negbench.run.tuning import requeued

    runner = SuiteRunner(plan)
    datasets = (validated or validate_plan(plan)).datasets
    out = []
    for dataset in datasets:
        for model_cfg in plan.suite.models:
            for spec in plan.strategies:
                job = Job(dataset, model_cfg, spec)
                seeds = plan.suite.suite.seeds
                row = {
                    "job": job.name,
                    "seeds_done": len(seeds) - len(runner.pending_seeds(job)),
                    "seeds": len(seeds),
                    "complete": 0,
                    "pruned": 0,
                    "running": 0,
                    "failed": 0,
                    "trials": 0,
                    "best_dev": None,
                }
                tuner = runner.tuner_for(job)
                if tuner is not None:
                    row["trials"] = plan.suite.tuning.n_trials
                    try:
                        study = optuna.load_study(study_name=tuner.study_name, storage=tuner.storage)
                    except KeyError:
                        study = None
                    if study is not None:
                        trials = study.get_trials(deepcopy=False)
                        again = requeued(trials)
                        for key, state in (
                            ("complete", TrialState.COMPLETE),
                            ("pruned", TrialState.PRUNED),
                            ("running", TrialState.RUNNING),
                            ("failed", TrialState.FAIL),
                        ):
                            row[key] = sum(t.state == state and t.number not in again for t in trials)
                        if row["complete"]:
                            row["best_dev"] = study.best_value
                out.append(row)
    return out
