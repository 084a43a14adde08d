"""Every chart's data downloadable beside it, as CSV and JSON."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

Data = pd.DataFrame | list[dict] | dict[str, Any]


def export_payloads(data: Data) -> tuple[bytes | None, bytes]:
    """(CSV or None for non-tabular data, JSON) as UTF-8 bytes."""
    frame = (
        data if isinstance(data, pd.DataFrame) else (pd.DataFrame(data) if isinstance(data, list) else None)
    )
    if frame is None:
        return None, json.dumps(data, indent=1, ensure_ascii=False, default=str).encode("utf-8")
    records = json.loads(frame.to_json(orient="records", force_ascii=False))
    return (
        frame.to_csv(index=False).encode("utf-8"),
        json.dumps(records, indent=1, ensure_ascii=False).encode("utf-8"),
    )


def download_buttons(data: Data, name: str, key: str) -> None:
    """CSV (for tables) and JSON download buttons; clicking them does not rerun the page. The files
    are made when a button is clicked, not on every run (they cost a slider move ~40 ms). `key` is
    the page's key (`<page>.<name>`, ui/state.py `page_keys`); the buttons' keys are derived from it."""
    tabular = isinstance(data, pd.DataFrame | list)
    cols = st.columns([1, 1, 6])
    formats = [("CSV", "text/csv", 0)] if tabular else []
    for col, (label, mime, i) in zip(cols, [*formats, ("JSON", "application/json", 1)], strict=False):
        col.download_button(
            label,
            lambda i=i: export_payloads(data)[i],
            f"{name}.{label.lower()}",
            mime,
            key=f"{key}-{label.lower()}",
            on_click="ignore",
            icon=":material/download:",
        )
