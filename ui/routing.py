"""Send a session's first run through app.py's navigation.

Streamlit keeps a relic of its first multipage design: while no script in the server process has
called `st.navigation`, a folder named `pages/` beside the entry point makes it run the requested
page file directly, with a navigation built from file names and without app.py (so no wide layout,
no titles or icons). That happens to whoever opens a shared link to a sub-page on a freshly started
server. Each page calls `through_app()` first: in that mode it switches the server to app.py's
navigation (what app.py's `st.navigation` call would do) and reruns, which then serves the same
page (the url paths equal the file stems, so the page is found under the same name).
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager  # pinned streamlit; see the module note

_ROUTED = "_routed_through_app"


def through_app() -> None:
    """First thing on every page: route through app.py if needed, and open the slot where values
    of a shared link that could not be used are named."""
    from ui.state import url_notice_slot

    url_notice_slot()
    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    # Rerun only on a session's first run, where no click or edit can be lost. (Streamlit's AppTest
    # starts every run in the legacy mode; later runs there go on as before.)
    if not st.session_state.get(_ROUTED):
        st.session_state[_ROUTED] = True
        st.rerun()
