"""Every chart's data downloadable beside it, as CSV and JSON."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st


def download_buttons(data: pd.DataFrame | list[dict] | dict[str, Any], name: str, key: str) -> None:
    """CSV (for tables) and JSON download buttons; clicking them does not rerun the page."""
    frame = data if isinstance(data, pd.DataFrame) else (
        pd.DataFrame(data) if isinstance(data, list) else None)
    cols = st.columns([1, 1, 6])
    if frame is not None:
        cols[0].download_button("CSV", frame.to_csv(index=False).encode("utf-8"), f"{name}.csv",
                                "text/csv", key=f"{key}-csv", on_click="ignore",
                                icon=":material/download:")
        payload = frame.to_json(orient="records", force_ascii=False, indent=1)
    else:
        payload = json.dumps(data, indent=1, ensure_ascii=False, default=str)
    cols[1].download_button("JSON", payload.encode("utf-8"), f"{name}.json", "application/json",
                            key=f"{key}-json", on_click="ignore", icon=":material/download:")
