"""Pure figure builders: data in, plotly figure (or escaped HTML) out. No Streamlit here."""
