"""tefviz: the Streamlit entry point. Pages are listed once, in ui/registry.py."""

import streamlit as st

from ui.registry import PAGES

st.set_page_config(page_title="tefviz", page_icon=":material/blur_on:", layout="wide")

navigation = st.navigation(
    [st.Page(p.path, title=p.title, icon=p.icon, default=i == 0, url_path=p.url_path or None)
     for i, p in enumerate(PAGES)]
)
navigation.run()
