"""One headline number of a page (an `st.metric`), built by the core's view functions so the pages
only lay them out: `for col, m in zip(st.columns(k), metrics): col.metric(**m.kwargs())`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    delta: str | None = None
    color: str = "normal"  # st.metric's delta_color
    help: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The arguments of `st.metric`."""
        return {
            "label": self.label,
            "value": self.value,
            "delta": self.delta,
            "delta_color": self.color,
            "help": self.help,
        }
