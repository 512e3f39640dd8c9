"""The guard's extraction processes (R-SEC-3): the event loop hands a message over and awaits.

Reading documents is CPU work in libraries we do not control, and an attacker chooses the
document, so it runs in separate processes (a ``ProcessPoolExecutor`` of ``classified.workers``,
started with ``spawn``: the server's threads are not forked). Each process caps its address space
(``RLIMIT_AS`` = ``classified.memory``: a decompression bomb gets a MemoryError, not the host's
memory) and each message its time (a ``SIGALRM`` timer of ``classified.timeout`` inside the
process; the loop also gives up a little later and replaces the processes, for a library stuck
in C code). Whatever goes wrong, the answer is ``unreadable``, never a pass.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from config.classified import Classified
from mailserver.policy.classified import Detector, first_finding
from smtp.classified.extract import Bounds, Unreadable, message_parts

log = logging.getLogger("smtp.classified")

#: Seconds the loop waits beyond ``timeout`` before it replaces the processes.
GRACE = 5.0


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: str  # clean | stamped | unreadable
    part: str = ""  # where: "tiêu đề / subject", "tệp đính kèm / attachment “x.pdf”" ...
    marking: str = ""  # the configured marking found (stamped)
    detail: str = ""  # the line found (stamped) or why it could not be read (unreadable)


class _TimeUp(Exception):
    pass


_detectors: dict[tuple, Detector] = {}


def _limit_memory(memory: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _alarm(_signum, _frame) -> None:
    raise _TimeUp()


def scan(data: bytes, markings: tuple[str, ...], labels: tuple[str, ...], patterns: tuple[str, ...],
         bounds: Bounds, timeout: float) -> Outcome:
    """Extract and look for a stamp; runs in a worker process (or a test's own process)."""
    key = (markings, labels, patterns)
    detector = _detectors.get(key)
    if detector is None:
        detector = _detectors[key] = Detector(markings, labels, patterns)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        found = first_finding(detector, message_parts(data, bounds))
    except Unreadable as e:
        return Outcome("unreadable", e.part, detail=e.why)
    except _TimeUp:
        return Outcome("unreadable", "", detail=f"not read within {timeout:g} s")
    except MemoryError:
        return Outcome("unreadable", "", detail="too large to read in memory")
    except RecursionError:
        return Outcome("unreadable", "", detail="nested too deep")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if found is None:
        return Outcome("clean")
    part, finding = found
    return Outcome("stamped", part, finding.marking, finding.line)


def _warm() -> bool:
    """Start a process (interpreter, this module, the MIME parser) before the first message
    needs it. The document libraries load on first use: most test servers never read one."""
    return True


class Scanner:
    """One per server process; ``await scan(message_bytes)`` from the event loop."""

    def __init__(self, cfg: Classified) -> None:
        self.cfg = cfg
        self.bounds = Bounds(max_unpacked=cfg.max_unpacked)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_memory, initargs=(self.cfg.memory,),
            )  # fmt: skip
        return self._pool

    async def warm(self) -> None:
        """Start the processes and load the libraries (server start-up, off the first message)."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(self.cfg.workers)))

    async def scan(self, data: bytes) -> Outcome:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        pool = self._executor()
        try:
            future = loop.run_in_executor(pool, scan, data, cfg.markings, cfg.labels, cfg.patterns, self.bounds, cfg.timeout)
            return await asyncio.wait_for(future, cfg.timeout + GRACE)
        except (BrokenProcessPool, TimeoutError) as e:
            log.error("classified guard: extraction process %s; replacing the processes",
                      "died" if isinstance(e, BrokenProcessPool) else "stuck")
            self._replace(pool)
            return Outcome("unreadable", "", detail="the document reader failed")

    def _replace(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        # a process stuck in C code ignores everything but a kill; the executor keeps its
        # processes in ``_processes`` (no public way to end one)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
