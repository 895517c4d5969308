"""Lambda execution environments for the local stack: each function runs in a pool of worker
processes, so requests run in parallel as they do in AWS.

A worker is one execution environment: its own process, with its own module state and
30-second caches, importing the handler once (its cold start) and then handling one event at
a time. A request that finds every worker of its function busy starts another (a cold start
on the request's path, as in Lambda) until the pool has ``size`` of them; then it waits for
one. A worker that crashes or outlasts the timeout is discarded and replaced on demand.

Workers are forked by a multiprocessing fork server that imported the heavy libraries once,
so a cold start costs the handler's own import only. They are never forked from the stack's
own process: that one runs threads (moto, the HTTP server) whose locks a fork would copy in
an unknown state, and its other workers' pipes would leak into every child. A worker whose
parent dies sees its pipe close and exits, so none outlives the stack.

The clock: with ``clock`` set (a test's FakeClock), every event carries the time that clock
reads when the event is sent, and the worker's handler is configured with a clock that
answers that time: the test moves time in its own process and the workers follow, without
sleeping. Without it, workers read the system clock as a deployed function does.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from idp_core.clock import Clock
from idp_core.routing import DEFAULT_FUNCTION, PATH_FUNCTIONS
from idp_local.gateway import FunctionError, FunctionTimedOut, Invocation, LambdaContext

ENV_WORKERS = "IDP_WORKERS"
# Every function of the routing table; each runs in its own pool.
FUNCTIONS = tuple(sorted({DEFAULT_FUNCTION, *PATH_FUNCTIONS.values()}))
DEFAULT_WORKERS = 4
MAX_WORKERS = 64
START_TIMEOUT_SECONDS = 60.0
# How long a worker may take to leave after its pipe closed before it is killed.
STOP_TIMEOUT_SECONDS = 5.0

# Imported once by the fork server, so no worker pays for them. "__main__" is the program
# that started the stack (the idp script, pytest): a worker would otherwise import it again
# to set itself up, as every multiprocessing child does. The handler modules are not here:
# they read their settings from the environment when imported, and each pool gives its
# workers their own environment.
PRELOAD = (
    "__main__",
    "boto3",
    "botocore.client",
    "pynamodb.models",
    "aws_lambda_powertools.event_handler",
    "jinja2",
    "argon2",
    "cryptography.x509",
    "lxml.etree",
    "signxml",
    "ldap3",
    "phonenumbers",
    "pyotp",
    "segno",
    "idp_core.web",
    "idp_core.signin",
    "idp_core.mfa.flow",
    "idp_core.mfa_pages",
    "idp_core.adaptive.enforce",
    "functions.provisioning.console",
    "idp_core.directories.imports",
    "idp_core.saml.certificate",
)

_context: Any = None
_context_lock = threading.Lock()


def _fork_server() -> Any:
    """The multiprocessing context whose fork server preloads ``PRELOAD`` (one per process)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(PRELOAD))
            _context = context
        return _context


def start_fork_server() -> None:
    """Start the fork server now: it imports ``PRELOAD`` in its own process while the caller
    goes on (the local stack starts moto and seeds its tables meanwhile)."""
    _fork_server()
    multiprocessing.forkserver.ensure_running()


class WorkerStartFailed(FunctionError):
    """A worker could not start (its handler failed to import); the message says why."""


def workers_setting(raw: str | None) -> int:
    """The pool size from ``IDP_WORKERS`` or ``--workers``; ValueError with a sentence when bad."""
    if raw is None or not raw.strip():
        return DEFAULT_WORKERS
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_WORKERS:
        raise ValueError(f"{ENV_WORKERS} must be a whole number from 1 to {MAX_WORKERS}, got {raw!r}.")
    return int(value)


class _PinnedClock:
    """The time the gateway's clock read when it sent the current event (see the module)."""

    def __init__(self) -> None:
        self.at = 0.0

    def now(self) -> float:
        return self.at


def _serve(function: str, module_name: str, env: Mapping[str, str], pinned: bool, conn: Connection) -> None:
    """A worker's life: cold start, then one event at a time until its pipe closes."""
    # Ctrl-C reaches the whole process group; the stack stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    clock = _PinnedClock()
    try:
        module = importlib.import_module(module_name)
        if pinned:
            # None: the function's own settings, read from the environment again.
            module.configure(None, clock)
    except BaseException as exc:
        # The whole story goes to the log (the worker's stderr is the stack's); the pool
        # reports the exception itself.
        traceback.print_exc()
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            event, now, timeout = conn.recv()
        except (EOFError, OSError):
            return  # The pool closed the pipe, or the stack is gone.
        if now is not None:
            clock.at = now
        # An API Gateway event names its request; a scheduled event has an id of its own.
        request_id = (event.get("requestContext") or {}).get("requestId") or event.get("id")
        context = LambdaContext(request_id or str(uuid.uuid4()), timeout, function)
        started = time.time()
        try:
            reply: tuple[str, Any] = ("ok", dict(module.lambda_handler(event, context)))
        except Exception:
            reply = ("error", f"the {function} handler raised:\n{traceback.format_exc()}")
        ended = time.time()
        try:
            conn.send((*reply, started, ended))
        except OSError:
            return  # The pool closed the pipe while the event ran (the stack is stopping).
        except Exception:
            # An answer that cannot cross the pipe is no answer, as API Gateway sees it.
            reason = f"the {function} handler's answer cannot be sent:\n{traceback.format_exc()}"
            conn.send(("error", reason, started, ended))


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection, generation: int) -> None:
        self.process = process
        self.conn = conn
        self.generation = generation

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    @property
    def alive(self) -> bool:
        return self.process.exitcode is None

    def wait_ready(self, function: str, timeout: float) -> None:
        if not self._answered_within(timeout):
            self.stop()
            raise WorkerStartFailed(f"a {function} worker did not start within {timeout:.0f} s")
        try:
            kind, detail = self.conn.recv()
        except (EOFError, OSError):
            kind, detail = "failed", f"exit status {self.process.exitcode}"
        if kind != "ready":
            self.stop()
            raise WorkerStartFailed(f"a {function} worker failed to start: {detail}")

    def run(self, function: str, event: dict[str, Any], now: float | None, timeout: float) -> Invocation:
        try:
            self.conn.send((event, now, timeout))
        except (OSError, ValueError) as exc:
            raise FunctionError(f"the {function} worker {self.pid} is gone: {exc}") from exc
        if not self._answered_within(timeout):
            raise FunctionTimedOut(f"the {function} worker {self.pid} did not answer within {timeout:.0f} s")
        try:
            kind, detail, started, ended = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(STOP_TIMEOUT_SECONDS)
            raise FunctionError(
                f"the {function} worker {self.pid} died (exit status {self.process.exitcode})"
            ) from exc
        if kind != "ok":
            raise FunctionError(str(detail))
        return Invocation(detail, self.pid, started, ended)

    def _answered_within(self, timeout: float) -> bool:
        """Whether the pipe has something to read (or closed) before ``timeout``."""
        ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], timeout)
        return bool(ready)

    def stop(self, grace: float = 0.0) -> None:
        """Close the pipe (the worker leaves when idle); kill it if it is still there after ``grace``."""
        self.conn.close()
        self.process.join(grace)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(STOP_TIMEOUT_SECONDS)


class WorkerPool:
    """The execution environments of one function (``function``: sso, otp, ...): at most
    ``size`` workers, each importing ``module`` (default ``functions.<function>.handler``)
    with ``env`` as its environment. Implements ``idp_local.gateway.Function``."""

    def __init__(
        self,
        function: str,
        env: Mapping[str, str],
        *,
        size: int = DEFAULT_WORKERS,
        clock: Clock | None = None,
        module: str | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.function = function
        self.module = module or f"functions.{function}.handler"
        self.env = dict(env)
        self.size = size
        self.clock = clock
        self.start_timeout = start_timeout
        # Where each cold start is told (the stack's log), with the worker's process id.
        self.log = log
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0
        # Workers of an older generation are retired instead of reused (``recycle``).
        self._generation = 0
        self._closed = False
        self._changed = threading.Condition()

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers that have started (idle or busy)."""
        with self._changed:
            return sorted(worker.pid for worker in [*self._idle, *self._busy])

    def invoke(self, event: dict[str, Any], timeout: float) -> Invocation:
        deadline = time.monotonic() + timeout
        worker = self._acquire(deadline)
        healthy = False
        try:
            now = self.clock.now() if self.clock is not None else None
            invocation = worker.run(self.function, event, now, max(0.0, deadline - time.monotonic()))
            healthy = True
            return invocation
        except FunctionTimedOut:
            raise
        except FunctionError:
            # A handler that raised leaves a usable environment, as in Lambda; a dead one does not.
            healthy = worker.alive
            raise
        finally:
            self._release(worker, healthy)

    def recycle(self) -> None:
        """Retire every worker (busy ones when their event is done), as a deployment of new
        code does: the next requests get new execution environments with empty caches."""
        with self._changed:
            self._generation += 1
            retired, self._idle = self._idle, []
        for worker in retired:
            worker.stop(STOP_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Stop every worker; a busy one is given ``STOP_TIMEOUT_SECONDS`` to finish its event."""
        with self._changed:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
            self._changed.notify_all()
        for worker in workers:
            worker.stop(STOP_TIMEOUT_SECONDS)

    def _acquire(self, deadline: float) -> _Worker:
        with self._changed:
            while True:
                if self._closed:
                    raise FunctionError(f"the {self.function} function is stopping")
                while self._idle:
                    worker = self._idle.pop()  # The most recently used, as Lambda prefers warm ones.
                    if worker.alive:
                        self._busy.add(worker)
                        return worker
                    worker.stop()  # It died while idle; the request goes to another.
                if len(self._busy) + self._starting < self.size:
                    self._starting += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionTimedOut(f"every {self.function} worker stayed busy")
                self._changed.wait(remaining)
        started = False
        try:
            worker = self._launch()
            self._wait_ready(worker)
            started = True
        finally:
            with self._changed:
                self._starting -= 1
                if started:
                    self._busy.add(worker)
                self._changed.notify_all()
        return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._changed:
            self._busy.discard(worker)
            keep = healthy and not self._closed and worker.generation == self._generation
            if keep:
                self._idle.append(worker)
            self._changed.notify_all()
        if not keep:
            worker.stop(0.0 if not healthy else STOP_TIMEOUT_SECONDS)

    def _launch(self) -> _Worker:
        context = _fork_server()
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(self.function, self.module, self.env, self.clock is not None, child_end),
            name=f"idp-local-{self.function}",
            daemon=True,
        )
        process.start()
        # Only the worker holds its end now, so either side sees the pipe close when the other goes.
        child_end.close()
        return _Worker(process, parent_end, self._generation)

    def _wait_ready(self, worker: _Worker) -> None:
        began = time.monotonic()
        worker.wait_ready(self.function, self.start_timeout)
        if self.log is not None:
            self.log(f"{self.function} worker {worker.pid} started in {time.monotonic() - began:.2f} s")

    def _adopt(self, worker: _Worker) -> None:
        with self._changed:
            self._idle.append(worker)


def close_all(pools: Iterable[WorkerPool]) -> None:
    for pool in pools:
        pool.close()


@contextmanager
def closing_pools(pools: Mapping[str, WorkerPool]) -> Iterator[Mapping[str, WorkerPool]]:
    """Stop every pool's workers when the block ends, however it ends."""
    try:
        yield pools
    finally:
        close_all(pools.values())


def warm_up(pools: Iterable[WorkerPool]) -> None:
    """Start one worker of each pool, all at once, so the first requests find them warm and a
    handler that cannot start fails here (``WorkerStartFailed``) rather than on a request."""
    launched = [(pool, pool._launch()) for pool in pools]
    failure: WorkerStartFailed | None = None
    for pool, worker in launched:
        try:
            pool._wait_ready(worker)
        except WorkerStartFailed as exc:
            failure = failure or exc
            continue
        pool._adopt(worker)
    if failure is not None:
        raise failure


__all__ = [
    "DEFAULT_WORKERS",
    "ENV_WORKERS",
    "FUNCTIONS",
    "WorkerPool",
    "WorkerStartFailed",
    "close_all",
    "closing_pools",
    "start_fork_server",
    "warm_up",
    "workers_setting",
]
