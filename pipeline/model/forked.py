"""Run one piece of training in a forked process while the parent goes on with another.

Why: scikit-learn's L-BFGS holds the GIL, so two multiclass heads fitted in threads take as long
as one after the other. A forked child inherits the feature matrix without a copy (pages are
shared until written) and sends back only its small result. Where fork is not available (Windows,
macOS's default spawn is not used here), or one core is all there is, the piece runs in the
parent when its result is asked for: the same result either way, one after the other.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from typing import Any, Callable


class Forked:
    """`fn()` running in a forked child; `result()` waits for it (or runs it here, see the module)."""

    def __init__(self, fn: Callable[[], Any], use_fork: bool = True):
        self.fn = fn
        self.proc = None
        self.conn = None
        if use_fork and (os.cpu_count() or 1) > 1 and "fork" in mp.get_all_start_methods():
            ctx = mp.get_context("fork")
            self.conn, child = ctx.Pipe(duplex=False)
            self.proc = ctx.Process(target=self._child, args=(child,), daemon=True)
            try:
                self.proc.start()
            except (AssertionError, OSError):  # inside a daemonic worker (no children allowed), or no memory to fork
                self.proc = None
                self.conn.close()
            child.close()

    def _child(self, conn) -> None:
        try:
            out = ("ok", self.fn())
        except BaseException as exc:  # noqa: BLE001 (sent to the parent, which raises it)
            out = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        conn.send(out)
        conn.close()

    def result(self) -> Any:
        if self.proc is None:
            return self.fn()
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError):  # the child died (killed, out of memory): do the work here
            status, value = "lost", None
        finally:
            self.proc.join()
            self.conn.close()
        if status == "ok":
            return value
        if status == "error":
            raise RuntimeError(f"a training step in a second process failed: {value}")
        return self.fn()
