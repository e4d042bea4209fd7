"""What the user sees: plain lines for events, errors on stderr, a rich spinner with elapsed time while waiting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.provider import GpuOffer


class Ui:
    def __init__(self, out: Console | None = None, err: Console | None = None) -> None:
        # soft_wrap: an endpoint or a command line must stay one copyable line whatever the terminal width
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.err = err or Console(highlight=False, soft_wrap=True, stderr=True)

    def say(self, text: str, markup: bool = False) -> None:
        self.out.print(text if markup else escape(text))

    def warn(self, text: str) -> None:
        self.err.print(f"[bold yellow]warning:[/] {escape(text)}")

    def error(self, text: str) -> None:
        self.err.print(f"[bold red]error:[/] {escape(text)}")

    @contextmanager
    def progress(self, description: str) -> Iterator[Callable[[str], None]]:
        """A spinner with elapsed time; yields a function that replaces the description."""
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        # transient on a terminal (the next line reports the outcome); without one rich draws nothing until the end
        with Progress(*columns, console=self.out, transient=self.out.is_terminal) as progress:
            task = progress.add_task(escape(description), total=None)
            yield lambda text: progress.update(task, description=escape(text))

    def offers_table(self, offers: list[GpuOffer], chosen: list[GpuOffer], gpu_count: int, cap: float) -> None:
        table = Table(title="GPU types with enough memory", title_justify="left")
        for column in ("GPU", "VRAM", "cloud", "stock", "$/h (pod)", "plan"):
            table.add_column(column, justify="left" if column in ("GPU", "cloud", "stock") else "right")
        order = {(offer.id, offer.cloud): i for i, offer in enumerate(chosen)}
        for offer in sorted(offers, key=lambda o: (o.price_per_gpu_hr, o.id, o.cloud)):
            price = offer.price_per_gpu_hr * gpu_count
            rank = order.get((offer.id, offer.cloud))
            if rank is not None:
                plan = "try first" if rank == 0 else f"fallback {rank}"
            elif price > cap + 1e-9:
                plan = "over the price cap"
            else:
                plan = "out of stock" if offer.stock == "NONE" else "excluded"
            stock = (offer.stock or "?").lower()
            table.add_row(escape(offer.name), f"{offer.vram_gb} GB", offer.cloud, stock, f"{price:.2f}", plan)
        self.out.print(table)
