"""A one-line progress ticker on the terminal for long runs of the news-ingest command line."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    """A one-line ticker on the terminal for long local runs; silent when the stream is not a TTY.

    The local FnApiRunner runs the whole pipeline inside `p.run()` and only returns its result (and metrics) at
    the end, so under `with beam.Pipeline() as p:` no live counters exist: the ticker then shows the elapsed
    time and the number of input files matched. Runners whose `p.run()` returns while the job runs (Dataflow,
    Flink) can `attach(result)` before `wait_until_finish()`, and the ticker adds files read and articles written
    from the live metrics.
    """

    def __init__(self, stream=None, interval: float = 5.0, files: int | None = None):
        self._stream = stream if stream is not None else sys.stdout
        self._interval = interval
        self._files = files
        self._result = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._shown = False

    @property
    def enabled(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (AttributeError, ValueError):
            return False

    def attach(self, result) -> None:
        """Poll this (running) PipelineResult's metrics from now on."""
        self._result = result

    def line(self) -> str:
        """The status text, e.g. `running 00:35 · 120 files read · 4,310 articles written`."""
        elapsed = int(time.monotonic() - self._started)
        parts = [f"running {elapsed // 60:02d}:{elapsed % 60:02d}"]
        live = {}
        if self._result is not None:
            # Imported here: pipelines.report re-exports Progress, so a module-level import would be circular.
            from pipelines.report.stats import metrics_from_result

            live = metrics_from_result(self._result, live=True)
        if "files_read" in live:
            total = f"/{self._files:,}" if self._files is not None else ""
            parts.append(f"{live['files_read']:,}{total} files read")
        elif self._files is not None:
            parts.append(f"{self._files:,} input files")
        if "rows_written.articles" in live:
            parts.append(f"{live['rows_written.articles']:,} articles written")
        return " · ".join(parts)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._stream.write("\r" + self.line() + "\x1b[K")
            self._stream.flush()
            self._shown = True

    def start(self) -> Progress:
        self._started = time.monotonic()
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="news-ingest-progress", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._shown:
            self._stream.write("\r\x1b[K")  # leave the terminal clean for the summary
            self._stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
