"""The worker loop: claim trial slots and final seeds from a shared board until every unit is done
(:mod:`negbench.run.claims`); a unit whose holder died is taken over, and the dead holder's leftovers cleaned up."""

from __future__ import annotations

import logging
import time

from negbench._io import is_alive
from negbench.run import interrupts
from negbench.run.claims import owner_process
from negbench.run.lock import remove_temporaries_of
from negbench.run.plan import Job
from negbench.run.tuning import TuningOutcome

__all__ = ["WorkerLoop"]

log = logging.getLogger(__name__)


class WorkerLoop:
    """The part of :class:`negbench.run.suite.SuiteRunner` that shares a suite with other workers."""

    def work(self, jobs: list[Job]) -> None:
        """Worker loop: claim trial slots and final seeds until every unit of every job is done.

        Final seeds of a job wait until all its trial slots are done (by any worker). A unit whose holder
        stopped heart-beating is taken over; a trial left RUNNING by that holder is failed and re-queued.
        """
        self.close_dead_workers()
        while True:
            interrupts.check()
            states = [self.work_on(job) for job in jobs]
            if all(state == "done" for state in states):
                self.close_dead_workers()
                return
            if "progress" not in states:
                time.sleep(self.poll_s)

    def work_on(self, job: Job) -> str:
        """One unit of ``job`` if one can be claimed: "progress", "waiting" (others hold units) or "done"."""
        if not self.pending_seeds(job):
            return "done"
        tuner = self.tuner_for(job)
        if tuner is not None:
            slots = [
                (f"trial/{tuner.study_name}/{slot}", lambda slot=slot: tuner.run_slot(self.objective_for(job), slot))
                for slot in range(self.suite.tuning.n_trials)
            ]
            state = self.claim_one(job, slots)
            if state != "done":
                return state  # final seeds wait until every trial slot is done
        tuned = tuner.best() if tuner else TuningOutcome({}, {}, None, None, 0)
        seeds = [
            (f"final/{run_id}", lambda seed=seed, run_id=run_id: self.final_seed(job, tuned, seed, run_id))
            for seed, run_id in self.pending_seeds(job)
        ]
        return self.claim_one(job, seeds)

    def claim_one(self, job: Job, units) -> str:
        """Run the first of ``units`` (key, fn) this worker can claim; release the claim if it raises."""
        assert self.board is not None
        waiting = False
        for key, fn in units:
            claim = self.board.get(key)
            if claim is not None and claim.state == "done":
                continue
            taken = self.board.claim(key)
            if taken is None:
                waiting = True
                continue
            if taken.from_owner is not None:
                self.clean_up_after(taken.from_owner)
            try:
                with self.tracker.run(job.name, tags=self.job_tags(job)):
                    fn()
            except BaseException:
                self.board.release(key)
                raise
            self.board.done(key)
            return "progress"
        return "waiting" if waiting else "done"

    def clean_up_after(self, dead: str) -> None:
        """A unit was taken over from ``dead``, whose heartbeat went stale. If its process is verifiably gone,
        close its open MLflow runs (KILLED) and remove the temporary directories it left; if it is still running
        (its heartbeat thread failed, or the grace period is too short) leave both alone; if it cannot be checked
        from here (another host or pid namespace), close its runs (they return to FINISHED if it was alive) and
        leave its directories to the next run that holds the output directory alone."""
        process = owner_process(dead)
        alive = is_alive(process) if process is not None else None
        if alive:
            log.warning(
                "took over a unit from worker %s, which is still running (its heartbeat went stale): "
                "its runs and temporaries are left alone",
                dead,
            )
            return
        closed = self.tracker.close_runs_of(dead)
        removed = remove_temporaries_of(self.plan.output_dir, process) if alive is False else []
        log.info(
            "took over from dead worker %s: %d MLflow runs closed, %d temporaries removed", dead, closed, len(removed)
        )

    def close_dead_workers(self) -> None:
        """Close the runs of workers that died holding no claim (nothing of theirs is ever taken over)."""
        closed = self.tracker.close_dead_workers(_dead)
        if closed:
            log.info("closed %d MLflow runs of dead workers", closed)


def _dead(worker: str) -> bool:
    process = owner_process(worker)
    return process is not None and is_alive(process) is False
