"""``podfleet executor``: a long-running executor that follows every task to its end.

Without Airflow's scheduler there is still someone to call ``sync()``: this command starts an
:class:`~podfleet.executor.Executor`, then syncs every ``--interval`` seconds, so task events
become DB states, queued tasks are sent as slots open, and stuck tasks time out. Every
``PODFLEET_HEARTBEAT_SECONDS`` its sync adopts the tasks of executors that stopped or died,
which is how tasks sent by ``podfleet submit`` (a short-lived executor) are followed. Its
metrics are
served on ``--metrics-port``. SIGTERM or Ctrl-C stops it; its tasks stay adoptable.

    podfleet executor --metrics-port 9465
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

import sqlalchemy as sa

from podfleet.executor.cli.preflight import fail, schema_problem
from podfleet.executor.db_errors import describe_db_error
from podfleet.executor.registry import ExecutorFenced, ExecutorIdInUse
from podfleet.settings import Settings

NAME = "executor"
#: ``podfleet --help``'s line for this subcommand.
HELP = "run an executor that follows every task"
log = logging.getLogger("podfleet.executor.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between syncs (default 1)")
    parser.add_argument("--metrics-port", type=int, default=9465,
                        help="serve this executor's /metrics here (0 = off; default 9465, "
                             "next to the workers' 9464)")
    parser.add_argument("--status-interval", type=float, default=30.0, metavar="SECONDS",
                        help="log task counts this often (0 = never; default 30)")


class ExecutorService:
    """Runs one executor's sync loop until :meth:`stop`; safe to stop from a signal handler."""

    def __init__(self, settings: Settings, *, interval: float,
                 status_interval: float) -> None:
        from podfleet.executor import Executor

        self.executor = Executor(settings)
        self.interval = interval
        self.status_interval = status_interval
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Start, then sync until stopped; always terminates the executor on the way out.

        A failing sync (a dependency down) is logged and retried at the next tick; only
        being fenced (another executor adopted this one's tasks) ends the loop early, with
        :class:`~podfleet.executor.ExecutorFenced`.
        """
        executor = self.executor
        executor.start()
        log.info("executor %s following tasks (sync every %gs)", executor.executor_id,
                 self.interval)
        next_status = next_complaint = time.monotonic()
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                try:
                    executor.sync()
                except ExecutorFenced:
                    raise
                except sa.exc.DBAPIError as exc:  # read-only, full, gone: one line, no trace
                    if now >= next_complaint:
                        log.error("sync failed (retrying every %gs): %s", self.interval,
                                  describe_db_error(exc, self.executor.engine.url))
                        next_complaint = now + 60
                    self._stopping.wait(self.interval)
                    continue
                except Exception as exc:  # a daemon outlives its dependencies' outages
                    if now >= next_complaint:
                        log.exception("sync failed (retrying every %gs): %s", self.interval,
                                      exc)
                        next_complaint = now + 60
                    self._stopping.wait(self.interval)
                    continue
                executor.get_event_buffer()  # nobody else reads it; keep it from growing
                if self.status_interval and now >= next_status:
                    counts = executor.slot_counts()
                    log.info("tasks: %d waiting for a slot, %d sent, %d launched, %d running",
                             counts.waiting, counts.sent, counts.launched, counts.running)
                    next_status = now + self.status_interval
                self._stopping.wait(self.interval)
        finally:
            executor.terminate()
            log.info("executor %s stopped; its unfinished tasks are adoptable",
                     executor.executor_id)


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        return fail(NAME, "--interval must be a positive number of seconds")
    if not 0 <= args.metrics_port <= 65535:
        return fail(NAME, "--metrics-port must be between 0 and 65535")
    settings = Settings.from_env()
    settings.require_signing_key()
    problem = schema_problem(settings.database.url)
    if problem:
        return fail(NAME, problem)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = ExecutorService(settings, interval=args.interval,
                              status_interval=args.status_interval)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if args.metrics_port:
        from podfleet.monitoring.exposition import serve_metrics

        try:
            server = serve_metrics(args.metrics_port, host=settings.metrics.host)
            log.info("metrics on %s", server.url)
        except OSError as exc:
            return fail(NAME, f"cannot serve metrics on port {args.metrics_port}: {exc}")
    try:
        service.run()
    except ExecutorFenced as exc:
        print(f"podfleet {NAME}: stopped: {exc}", file=sys.stderr)
        return 1
    except ExecutorIdInUse as exc:
        return fail(NAME, str(exc))
    except sa.exc.DBAPIError as exc:
        return fail(NAME, describe_db_error(exc, settings.database.url))
    finally:
        if server is not None:
            server.close()
    return 0
