"""Fair-share benchmark: three task queues, weights 3:1:1, each with a backlog, one launch rate.

A local fleet (the simulator with 20 nodes in its own process, a private Redis, two
``podfleet worker`` processes with the watcher) gets signed launch messages straight into
each queue's dramatiq queue, as an executor sends them: ``etl`` (weight 3) and ``default``
(weight 1) from the start, ``ml`` (weight 1) only after the first window, so it is a queue
that was idle and receives work. It prints, from the launcher's own send times in the events:

* each queue's share of the launches in every 5 s window against its weight's share among
  the queues that had work (goal: within 5 percentage points);
* Jain's fairness index of the weight-normalised shares per window (1.0 = exactly fair);
* how long ``ml`` waited from its first enqueue to its first create (goal: ≤ 1 s);
* pending pods (sampled from the simulator's pod list) against PODFLEET_MAX_PENDING_PODS
  (goal: never above), and the most creates in any sliding 1 s window against the rate.

With ``--pending`` the pending cap binds instead of the rate: each pod takes about
``--start`` seconds (default 10; 0.5–1.5 × that, spread) to start, so at the rate (100/s)
the cap (PODFLEET_MAX_PENDING_PODS, 500) fills in 5 s, and launches wait for pods to start.
``ml`` gets its work once pods start steadily (after ``--start`` + 5 s). It also prints,
from the same samples, each queue's share of the pending pods per 5 s window against its
weight's share (goal: within 5 points from
10 s after ``ml`` joined, once the others' pods over their shares have started), with
Jain's index.

    .venv/bin/python bench/bench_fairness.py [--quick] [--rate 100] [--seconds 60]
    .venv/bin/python bench/bench_fairness.py --pending [--start 10] [--seconds 60]

Exits 1 when a goal is missed; with ``--quick`` (the CI smoke) only when a queue never
launched or pending pods passed the cap.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from podfleet.broker import enqueue_envelopes, make_broker
from podfleet.contracts.events import TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest, new_launch_id
from podfleet.contracts.naming import MANAGED_SELECTOR, QUEUE_ANNOTATION
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.local.waiting import wait_for
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig

KEY = "bench-fairness-signing-key-0123456789"
WEIGHTS = {"etl": 3.0, "default": 1.0, "ml": 1.0}
WINDOW_S = 5.0


#: One sample of the simulator's Pending pods: (time.time(), task queue -> how many).
Sample = tuple[float, Counter[str]]


def requests(queue: str, count: int, executor_id: str,
             start_s: float = 0.0) -> list[LaunchRequest]:
    """``count`` launches of ``queue``; with ``start_s``, their pods take 0.5–1.5 × that to
    start (spread, so that pods start steadily rather than in waves of what one burst
    created)."""
    now = time.time()

    def annotations(n: int) -> dict[str, str]:
        made = {fate.DURATION: "1"}
        if start_s > 0:
            made[fate.START_DELAY] = f"{start_s * (0.5 + (n % 11) / 10):.2f}"
        return made

    return [LaunchRequest(
        key=TaskKey(f"fair-{queue}", f"t-{n}", "run-1", -1, 1), launch_id=new_launch_id(),
        command=("true",), executor_id=executor_id, namespace="default", queued_at=now,
        executor_config={"annotations": annotations(n)},
        queue=None if queue == "default" else queue) for n in range(count)]


def sealed(batch: list[LaunchRequest]) -> list[dict[str, Any]]:
    """``batch`` as signed launch messages of 50, as an executor sends them."""
    signer = MessageSigner(KEY.encode())
    return [LaunchBatch(requests=tuple(batch[i:i + 50])).seal(signer)
            for i in range(0, len(batch), 50)]


def sample_pending(kube: KubeClient, stop: threading.Event, out: list[Sample]) -> None:
    while not stop.wait(0.2):
        # One page: a paged list's pages are read at different moments (no instant's count).
        pods = kube.list_pods("default", label_selector=MANAGED_SELECTOR,
                              page_size=100_000).items
        out.append((time.time(), Counter(
            str(((p.get("metadata") or {}).get("annotations") or {}).get(QUEUE_ANNOTATION))
            for p in pods if (p.get("status") or {}).get("phase") == "Pending")))


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if values else 1.0


def weighted_shares(amounts: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Each queue's share of ``amounts``, and its weight's share among the queues holding
    any (0 for a queue holding none): (share, goal)."""
    total = sum(amounts.values())
    weight_sum = sum(w for q, w in WEIGHTS.items() if amounts[q] > 0)
    return {q: (amounts[q] / total if total else 0.0,
                w / weight_sum if amounts[q] > 0 else 0.0) for q, w in WEIGHTS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke of about 30 s (CI)")
    parser.add_argument("--rate", type=float, default=None, help="PODFLEET_LAUNCH_RATE")
    parser.add_argument("--seconds", type=float, default=None, help="length of the run")
    parser.add_argument("--pending", action="store_true",
                        help="the pending cap binds: pods take --start seconds to start")
    parser.add_argument("--start", type=float, default=10.0,
                        help="with --pending, seconds each pod takes to start")
    parser.add_argument("--cap", type=int, default=None,
                        help="PODFLEET_MAX_PENDING_PODS (default: podfleet's, 500)")
    args = parser.parse_args()
    rate = args.rate or (40.0 if args.quick and not args.pending else 100.0)
    start_s = args.start if args.pending else 0.0
    # With --pending, ml joins once pods start steadily, and gets time to reach its share.
    ml_at = start_s + WINDOW_S if args.pending else WINDOW_S
    seconds = args.seconds or (ml_at + 6 * WINDOW_S if args.pending and args.quick
                               else 3 * WINDOW_S if args.quick else 60.0)
    executor_id = f"bench-{uuid.uuid4().hex[:6]}"
    sim = SimulatorConfig(default_termination_grace_period_s=1,
                          cluster=ClusterConfig(nodes=20))
    env = {"PODFLEET_LAUNCH_RATE": f"{rate:g}", "PODFLEET_QUEUE_RATES": "etl=0,ml=0",
           "PODFLEET_QUEUE_WEIGHTS": ",".join(f"{q}={w:g}" for q, w in WEIGHTS.items()),
           "PODFLEET_EXECUTOR_ID": executor_id,
           **({"PODFLEET_MAX_PENDING_PODS": str(args.cap)} if args.cap is not None else {})}
    with LocalFleet(simulator=sim, signing_key=KEY, migrate=False, env=env) as fleet:
        settings = fleet.settings()
        broker = make_broker(settings)
        client = redis.Redis.from_url(fleet.redis_url)
        kube = KubeClient.from_config(kubeconfig=fleet.env["PODFLEET_KUBECONFIG"])
        fleet.workers.start(2, 8)
        # The workers boot (each consumes every launch queue) and a watcher takes the lease:
        # on a loaded host that takes far longer than the 3 s it takes on a quiet one.
        keys = RedisKeys(settings.redis.prefix)
        queues = [settings.launch.queue, *(f"{settings.launch.queue}.{q}" for q in ("etl", "ml"))]
        wait_for(lambda: all(client.zcard(keys.consumers(q)) >= 2 for q in queues)
                 and client.hget(keys.watcher_lease, "holder"), 120, "workers and a watcher")
        # Enough backlog for every queue to have work for the whole run.
        backlog = int(rate * seconds) + 100
        stop = threading.Event()
        pending: list[Sample] = []
        sampler = threading.Thread(target=sample_pending, args=(kube, stop, pending),
                                   daemon=True)
        sampler.start()
        # Sealed beforehand: the clock measures podfleet, not this driver's signing.
        default = sealed(requests("default", backlog, executor_id, start_s))
        etl = sealed(requests("etl", backlog, executor_id, start_s))
        ml = sealed(requests("ml", backlog, executor_id, start_s))
        started = time.time()
        enqueue_envelopes(broker, settings.launch.queue, default)
        enqueue_envelopes(broker, f"{settings.launch.queue}.etl", etl)
        time.sleep(ml_at)
        ml_sent_at = time.time()
        enqueue_envelopes(broker, f"{settings.launch.queue}.ml", ml)
        time.sleep(max(0.0, started + seconds - time.time()))
        stop.set()
        sampler.join(5)
        stream = RedisKeys(settings.redis.prefix).events(executor_id)
        events = [TaskEvent.from_fields(f) for _, f in client.xrange(stream)]
        client.close()
        kube.close()
        broker.close()
    launched = [(e.detail["sent_at"], e.key.dag_id.removeprefix("fair-")) for e in events
                if e.state is TaskState.LAUNCHED and "sent_at" in e.detail
                and e.detail["sent_at"] <= started + seconds]
    ok = report(launched, started, seconds, ml_sent_at, pending,
                settings.launch.max_pending_pods, rate, judge_launches=not args.pending)
    if args.pending:
        ok = report_pending(pending, started, seconds, ml_sent_at) and ok
    print("goals met" if ok else "GOALS MISSED")
    if args.quick and not ok:
        # A smoke judges correctness only (each queue launched, the cap held): shares and
        # waits are timing, which a loaded CI machine cannot promise.
        queues = {queue for _, queue in launched}
        cap = settings.launch.max_pending_pods
        peak = max((sum(counts.values()) for _, counts in pending), default=0)
        broken = queues != {"default", "etl", "ml"} or (cap > 0 and peak > cap)
        print("smoke: " + ("FAILED (a queue never launched or the cap was passed)" if broken
                           else "correct (timing goals are judged by full runs only)"))
        return 1 if broken else 0
    return 0 if ok else 1


def report(launched: list[tuple[float, str]], started: float, seconds: float,
           ml_sent_at: float, pending: list[Sample], cap: int, rate: float,
           judge_launches: bool = True) -> bool:
    """Print the launches' shares per window, ml's first launch and the pending peak;
    False when a goal is missed (the launch shares only with ``judge_launches``: while the
    pending cap binds, launches follow the pods that start, not the weights)."""
    ok = True
    windows: dict[int, Counter[str]] = defaultdict(Counter)
    for sent_at, queue in launched:
        windows[int((sent_at - started) // WINDOW_S)][queue] += 1
    print(f"launch rate {rate:g}/s, weights "
          + ", ".join(f"{q}={w:g}" for q, w in WEIGHTS.items()) + f"; ml gets work at "
          f"{ml_sent_at - started:.1f}s")
    print("window   " + "  ".join(f"{q:>18}" for q in WEIGHTS) + "   Jain")
    for index in sorted(windows):
        if (index + 1) * WINDOW_S > seconds + 0.01:
            continue
        cells = []
        normalised = []
        for share, goal in weighted_shares(windows[index]).values():
            cells.append(f"{100 * share:5.1f}% vs {100 * goal:5.1f}%")
            if goal > 0:
                normalised.append(share / goal)
                # The window in which ml joins mixes two regimes: judged from the next one.
                if judge_launches and index > 0 and ml_sent_at - started < index * WINDOW_S \
                        and abs(share - goal) > 0.05:
                    ok = False
        print(f"{index * WINDOW_S:4.0f}-{(index + 1) * WINDOW_S:<3.0f} " + "  ".join(
            f"{c:>18}" for c in cells) + f"   {jain(normalised):.3f}")
    ml_first = min((t for t, q in launched if q == "ml"), default=None)
    if ml_first is None:
        print("ml never launched")
        ok = False
    else:
        wait = ml_first - ml_sent_at
        print(f"ml (idle, then work): first launch {wait:.2f}s after its first enqueue "
              f"(goal ≤ 1 s)")
        ok = ok and wait <= 1.0
    peak = max((sum(counts.values()) for _, counts in pending), default=0)
    print(f"pending pods: peak {peak} against the cap {cap} (goal never above)")
    ok = ok and (cap == 0 or peak <= cap)
    times = sorted(t for t, _ in launched)
    j = 0
    busiest = 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    print(f"most creates in any 1 s window: {busiest} (rate {rate:g}/s)")
    return ok


def report_pending(pending: list[Sample], started: float, seconds: float,
                   ml_sent_at: float) -> bool:
    """Print each queue's share of the Pending pods per window (the mean of its samples)
    against its weight's share among the queues holding pods; False when a window from
    10 s after ml joined is off by more than 5 points."""
    ok = True
    windows: dict[int, list[Counter[str]]] = defaultdict(list)
    for at, counts in pending:
        if at >= started:
            windows[int((at - started) // WINDOW_S)].append(counts)
    print("pending pods while the cap binds: each queue's share (mean of the samples in the "
          "window) against its weight's share")
    print("window   " + "  ".join(f"{q:>24}" for q in WEIGHTS) + "   Jain")
    for index in sorted(windows):
        if (index + 1) * WINDOW_S > seconds + 0.01:
            continue
        samples = windows[index]
        held = {q: sum(c[q] for c in samples) / len(samples) for q in WEIGHTS}
        judged = index * WINDOW_S >= ml_sent_at - started + 2 * WINDOW_S
        cells = []
        normalised = []
        for queue, (share, goal) in weighted_shares(held).items():
            cells.append(f"{held[queue]:5.0f} {100 * share:5.1f}% vs {100 * goal:5.1f}%")
            if goal > 0:
                normalised.append(share / goal)
                if judged and abs(share - goal) > 0.05:
                    ok = False
        print(f"{index * WINDOW_S:4.0f}-{(index + 1) * WINDOW_S:<3.0f} " + "  ".join(
            f"{c:>24}" for c in cells) + f"   {jain(normalised):.3f}"
            + ("" if judged else "   (not judged)"))
    return ok


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
