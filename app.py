"""tefviz: the Streamlit entry point. Pages are listed once, in ui/registry.py."""

from pathlib import Path

import streamlit as st

from ui import hardening
from ui.registry import PAGES

hardening.install()
# a local image: a :material: favicon is fetched from a font CDN on every page view
st.set_page_config(
    page_title="tefviz", page_icon=str(Path(__file__).parent / "ui" / "favicon.png"), layout="wide"
)

navigation = st.navigation(
    [
        st.Page(p.path, title=p.title, icon=p.icon, default=i == 0, url_path=p.url_path or None)
        for i, p in enumerate(PAGES)
    ]
)
navigation.run()
