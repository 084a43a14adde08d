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
    if tabular:
        cols[0].download_button(
            "CSV",
            lambda: export_payloads(data)[0],
            f"{name}.csv",
            "text/csv",
            key=f"{key}-csv",
            on_click="ignore",
            icon=":material/download:",
        )
    cols[1].download_button(
        "JSON",
        lambda: export_payloads(data)[1],
        f"{name}.json",
        "application/json",
        key=f"{key}-json",
        on_click="ignore",
        icon=":material/download:",
    )
