"""tefviz: see token sparsity in transformers. The core never imports Streamlit."""

__version__ = "0.1.0"
