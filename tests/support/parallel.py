"""Races on purpose: the same call from several threads released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable


def outcomes_of_parallel(calls: list[Callable[[], object]], refused: type[Exception]) -> list[str]:
    """Run ``calls`` at once; each gives "ok", or "refused" when it raised ``refused``.

    A barrier releases the threads together, so the conditional writes under test really
    race. Any other exception fails the test in the calling thread.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        barrier.wait(timeout=30)
        try:
            call()
            result = "ok"
        except refused:
            result = "refused"
        except BaseException as exc:
            with lock:
                unexpected.append(exc)
            return
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if unexpected:
        raise unexpected[0]
    return sorted(outcomes)
