"""The line that says the run is over and where its summary.json went."""

from __future__ import annotations

from textual.widgets import Static


class FinalBanner(Static):
    """Hidden while the run goes; then "stopping…", then the summary path, or why it is missing."""

    def show_stopping(self) -> None:
        self.set_classes("-visible -stopping")
        self.update("Stopping the run and writing summary.json …")

    def show_written(self, summary_path: str, requests: int | None, duration: str) -> None:
        self.set_classes("-visible -done")
        done = f"Run finished: {requests:,} requests in {duration}. " if requests is not None else "Run finished. "
        self.update(f"{done}summary.json written to {summary_path} · press q to quit")

    def show_failed(self, reason: str) -> None:
        self.set_classes("-visible -failed")
        self.update(f"Run finished, but the summary was not written: {reason} · press q to quit")
