"""A scheduler's view of podfleet: submit a few tasks, heartbeat, read the event buffer.

This is the loop Airflow's scheduler runs around an executor, reduced to its bones. Run it
against a running podfleet (Redis, a metadata DB, `podfleet worker` processes and a cluster),
configured through the usual PODFLEET_* variables, e.g. with the simulator:

    podfleet sim --port 8001 --kubeconfig-out /tmp/sim.kubeconfig &
    export PODFLEET_KUBECONFIG=/tmp/sim.kubeconfig PODFLEET_SIGNING_KEY=$(openssl rand -hex 32)
    export PODFLEET_REDIS_URL=redis://127.0.0.1:6379/0
    podfleet db upgrade && podfleet worker --processes 1 &
    python examples/scheduler_loop.py
"""

from __future__ import annotations

import time

from podfleet.contracts.keys import TaskKey
from podfleet.executor import Executor


def main() -> None:
    executor = Executor()
    executor.start()
    run_id = f"example__{int(time.time())}"
    keys = [TaskKey("example_dag", f"say_{i}", run_id) for i in range(5)]
    for key in keys:
        executor.execute_async(key, ["echo", f"hello from {key.task_id}"],
                               executor_config={"resources": {"requests": {"cpu": "100m"}}})
    finished: dict[TaskKey, str] = {}
    deadline = time.time() + 120
    while len(finished) < len(keys) and time.time() < deadline:
        executor.heartbeat()  # sync pod events, launch what fits in the open slots
        for key, (state, info) in executor.get_event_buffer().items():
            print(f"{key}: {state} {info or ''}")
            if state.is_terminal:
                finished[key] = state
        time.sleep(0.5)
    executor.end(timeout=10)


if __name__ == "__main__":
    main()
