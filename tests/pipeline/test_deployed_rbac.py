"""deploy/'s Roles proven on the simulator: workers and executors run with the ServiceAccount
tokens of deploy/kubernetes, RBAC enforced, through every path that needs a granted verb.
No request may be denied, and every granted verb must be used: a grant nothing uses is too
broad. Default settings but for the test's own archive directory and timeouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from deployed_rbac import Identity, apply_deploy_rbac
from pipeline_support import EXIT_3, PODFLEET, ROOT, SUCCESS, Pipeline, submission, task_key

from podfleet.contracts.states import TaskState
from podfleet.simulator.cluster import fate

pytestmark = pytest.mark.timeout(240)

PENDING_TIMEOUT_SECONDS = 2


def podfleet_logs(pipeline: Pipeline, executor: Identity,
                  task: str) -> subprocess.CompletedProcess[str]:
    """`podfleet logs TASK` run with the executor's kubeconfig."""
    env = {**pipeline.env, "PODFLEET_KUBECONFIG": str(executor.kubeconfig),
           "PATH": str(Path(PODFLEET).parent) + ":/usr/bin:/bin"}
    return subprocess.run([PODFLEET, "logs", task], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_deployed_roles_allow_every_call_and_grant_nothing_unused(
        pipeline: Pipeline, tmp_path: Path) -> None:
    # Given deploy/kubernetes' ServiceAccounts and Roles in the pipeline's namespace
    identities = apply_deploy_rbac(pipeline.sim, pipeline.namespace, tmp_path)
    worker, executor = identities["podfleet-worker"], identities["podfleet-executor"]
    pipeline.sim.admin.reset_stats()
    # ... a worker at default settings (delete policy always, logs archived) as its SA
    del pipeline.env["PODFLEET_DELETE_POLICY"]
    pipeline.env["PODFLEET_LOG_ARCHIVE"] = str(tmp_path / "logs")
    pipeline.env["PODFLEET_KUBECONFIG"] = str(worker.kubeconfig)
    pipeline.start_worker()
    # ... and executor A as the executor's SA, with a pending timeout short enough to see
    as_executor = {"kubeconfig": executor.kubeconfig,
                   "pending_timeout_seconds": PENDING_TIMEOUT_SECONDS}
    first = pipeline.started_executor("exec-a", **as_executor)

    # When tasks succeed, fail, stay Pending past the timeout, and one keeps running
    ok, failing, stuck, running = (task_key(n) for n in range(4))
    first.submit_many([
        submission(ok, SUCCESS), submission(failing, EXIT_3),
        submission(stuck, {fate.START_DELAY: "120"}), submission(running, {fate.DURATION: "120"}),
    ])
    pipeline.run_until_finished(first, [ok, failing, stuck], timeout=90)
    pipeline.run_until(first, lambda: any(r.key == running and r.state is TaskState.RUNNING
                                          for r in pipeline.reports), 60, "a running task")
    # ... `podfleet logs` reads the running task's pod and the finished task's archive
    live = podfleet_logs(pipeline, executor, f"{running.dag_id}/{running.task_id}/run-1")
    done = podfleet_logs(pipeline, executor, f"{ok.dag_id}/{ok.task_id}/run-1")
    # ... executor A dies and B adopts its running task, then revokes it
    first.redis.close()
    first.broker.close()
    first.engine.dispose()
    second = pipeline.started_executor("exec-b", **as_executor)
    assert "exec-a" in second.adopt_dead_executors(["exec-a"])
    assert second.revoke(running)
    # ... and a create whose answer is lost makes the launcher look the pod up
    pipeline.sim.admin.set_faults(verbs={"create": {"timeout": 1.0}}, timeout_mode="close")
    lost = task_key(4)
    second.submit_many([submission(lost, SUCCESS)])
    pipeline.run_until_finished(second, [lost], timeout=90)
    pipeline.sim.admin.clear_faults()
    # ... and a pod a ResourceQuota can never admit makes the launcher read the quotas
    pipeline.kube.request("POST", f"/api/v1/namespaces/{pipeline.namespace}/resourcequotas",
                          body={"metadata": {"name": "q"}, "spec": {"hard": {"pods": "0"}}})
    never = task_key(5)
    second.submit_many([submission(never, SUCCESS)])
    pipeline.run_until_finished(second, [never], timeout=90)

    # Then the tasks ended as asked and both log reads worked
    states = {r.key: r.state for r in pipeline.reports if r.state.is_terminal}
    assert (states[ok], states[failing], states[stuck]) == (
        TaskState.SUCCESS, TaskState.FAILED, TaskState.FAILED)
    assert live.returncode == 0, live.stderr
    assert done.returncode == 0, done.stderr
    # ... no call of either component was denied
    decisions = pipeline.sim.admin.authorization()
    assert [d for d in decisions if not d.allowed] == []
    # ... and each granted verb was used by the component it is granted to
    assert worker.unused(decisions) == [], "granted to the workers, never used"
    assert executor.unused(decisions) == [], "granted to the executor, never used"
