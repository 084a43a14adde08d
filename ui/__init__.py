"""Streamlit-side conventions shared by every page: URL state, export, errors, caching, progress."""
