"""A mixed fleet through the whole pipeline reaches exactly the states its fates ask for."""

from __future__ import annotations

from collections import Counter

from pipeline_support import EXPECTED, FATES, Pipeline, submit_fleet

from podfleet.contracts.states import TaskState


def test_a_mixed_fleet_ends_exactly_as_its_fates_ask_with_one_pod_per_task(
        pipeline: Pipeline) -> None:
    # Given two worker processes (one of them watching) and an executor
    pipeline.start_worker()
    pipeline.start_worker()
    executor = pipeline.started_executor()
    # When a fleet of succeeding, failing, OOM-killed and unpullable tasks is submitted
    counts = {"success": 90, "exit3": 10, "oom": 10, "image_pull": 10}
    kinds = submit_fleet(executor, FATES, counts)
    pipeline.run_until_finished(executor, kinds, timeout=90)

    # Then every task reached its state and reason, in the DB ...
    rows = pipeline.rows_by_key()
    assert set(rows) == set(kinds)
    for key, kind in kinds.items():
        state, reason = EXPECTED[kind]
        assert (rows[key].task_state, rows[key].reason) == (state, reason), key
        assert rows[key].attempt == 1
    # ... and in the event buffer, exactly one terminal report per task
    terminal = pipeline.terminal_reports()
    assert sum(terminal.values()) == len(kinds)
    assert {key: state for key, state in terminal} == {
        key: EXPECTED[kind][0] for key, kind in kinds.items()}
    reasons = {r.key: r.reason for r in pipeline.reports if r.state.is_terminal}
    assert reasons == {key: EXPECTED[kind][1] for key, kind in kinds.items()}
    # RUNNING is reported at most once, and only for tasks that ran (a fast task's RUNNING
    # and SUCCESS may reach one sync together, and the buffer keeps the latest)
    running = Counter(r.key for r in pipeline.reports if r.state is TaskState.RUNNING)
    ran = {key for key, kind in kinds.items() if kind != "image_pull"}
    assert set(running) <= ran and set(running.values()) <= {1}
    # And the cluster saw exactly one pod per task, each under its task's launch id
    pipeline.kept_pod_per_row(rows)
    assert len(pipeline.pods()) == len(kinds)
