"""Home: what tefviz is for, the device, the shipped checkpoints with their cards, every page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tefviz.checkpoints import CheckpointInfo
from tefviz.device import device_info
from tefviz.viz.lm_figures import training_curve_figure
from ui.errors import guarded, literal
from ui.export import download_buttons
from ui.loaders import cached_checkpoints
from ui.registry import PAGES
from ui.routing import through_app
from ui.state import page_keys

through_app()  # a first visit straight to this page still gets app.py's navigation
key = page_keys("home")  # every widget key of the page is home.<name>

st.title("tefviz: see token sparsity in transformers")
st.markdown(
    "Transformers spend the same compute on every token, yet most tokens matter little. "
    "**tefviz** lets you *see* that: which tokens a scoring function keeps, what dropping the "
    "rest costs, how sparse attention patterns connect tokens, and how far embeddings compress. "
    "Everything runs live on real models the project trained itself and ships, so it works "
    "offline, on a laptop CPU or a GPU.\n\n"
    "It is built for people **exploring** in a browser, **teachers** who want a link that opens "
    "the exact view they mean (every page keeps its choices in the address bar), and "
    "**researchers** doing qualitative error analysis (every chart's data can be downloaded)."
)

st.subheader("Pages")
for page in PAGES[1:]:
    with st.container(border=True):
        st.page_link(page.path, label=page.title, icon=page.icon)
        st.caption(page.blurb)

st.subheader("Device")
info = guarded("Choosing the device", device_info)
if info is not None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Runs on", info.device.type.upper(), help=info.name)
    c2.metric("Compute dtype", str(info.dtype).replace("torch.", ""), help=info.bf16_reason)
    c3.metric("Hardware", info.name if len(info.name) < 28 else info.name[:26] + "…", help=info.detail)
    st.caption(
        f"{info.name}: {info.detail}. dtype: {info.bf16_reason}. Override with TEFVIZ_DEVICE / TEFVIZ_DTYPE."
    )

st.subheader("Checkpoints")
checkpoints = guarded("Reading checkpoints/", cached_checkpoints) or []
if not checkpoints:
    st.warning("No checkpoints found in `checkpoints/`. Train one with `python -m tefviz train lm`.")


def _architecture_rows(card: dict, params: int | None, size: int) -> pd.DataFrame:
    arch = dict(card.get("architecture", {}))
    arch["parameters"] = f"{(params or arch.get('parameters', 0)) / 1e6:.2f} M"
    arch["file size"] = f"{size / 2**20:.1f} MiB"
    return pd.DataFrame({"property": list(arch), "value": [str(v) for v in arch.values()]})


def show_tef_card(ck: CheckpointInfo, card: dict) -> None:
    """TEF heads: what they are, what they run on, how they were trained, the held-out table."""
    training = card.get("training", {})
    cols = st.columns(3)
    cols[0].metric("Variant", str(card.get("variant", "?")))
    cols[1].metric(
        "Runs on",
        str(card.get("base_model", "?")),
        help="the paper variant carries its own fine-tuned copy of this LM",
    )
    cols[2].metric("Training steps", str(training.get("steps", "?")))
    table = (card.get("metrics") or {}).get("heldout_table")
    if table:
        st.markdown(
            f"**Held-out perplexity / kept fraction vs t** (dense reference "
            f"{table['reference']['perplexity']:.2f})"
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "scorer": label,
                        **{
                            f"t={r['t']}": f"{r['perplexity']:.2f} / {r['kept_fraction']:.2f}"
                            for r in g["rows"]
                        },
                    }
                    for label, g in table["scorers"].items()
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    show_training_and_card(ck, card)


def show_training_and_card(ck: CheckpointInfo, card: dict, curve: bool = False) -> None:
    """The training command (a multi-stage one a stage a line), the log (as a curve for an LM)
    and the full card."""
    training = card.get("training") or {}
    if training.get("command"):
        st.markdown("**Training command**")
        st.code(training["command"].replace(" && ", " &&\n"), language="bash")
    if training.get("log") and curve:
        with st.expander("Training curve"):
            st.plotly_chart(
                training_curve_figure(training["log"]), width="stretch", key=key(f"curve-{ck.name}")
            )
            download_buttons(training["log"], f"{ck.name}-training-log", key=key(f"log-{ck.name}"))
    elif training.get("log"):
        with st.expander("Training log"):
            st.dataframe(pd.DataFrame(training["log"]), hide_index=True, width="stretch")
    with st.expander("Full card (card.json)"):
        st.json(card, expanded=False)
        download_buttons(card, f"{ck.name}-card", key=key(f"card-{ck.name}"))


def show_image_card(ck: CheckpointInfo, card: dict) -> None:
    """An image classifier: size, accuracy, the evaluation table, data and training command."""
    arch = card.get("architecture") or {}
    rows = ((card.get("evaluation") or {}).get("rows")) or []
    every = next((r for r in rows if r.get("setting") == "all"), None)
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{(ck.parameters or 0) / 1e6:.2f} M")
    cols[1].metric("Tokens (CLS included)", str(arch.get("tokens", "?")))
    valid = (card.get("metrics") or {}).get("valid_accuracy")
    if isinstance(valid, int | float):
        cols[2].metric("Validation accuracy", f"{valid:.1%}", help="5,000 held-out training images")
    if every:
        cols[3].metric(
            "Evaluation-subset accuracy", f"{every['accuracy']:.1%}", help="2,000 test images, every token"
        )
    if rows:
        st.markdown("**Accuracy, macro-F1 and tokens per setting** (`python -m tefviz eval images`)")
        st.dataframe(
            pd.DataFrame(rows)[["label", "mean_tokens", "accuracy", "macro_f1"]],
            hide_index=True,
            width="stretch",
        )
    sources = (card.get("training_data") or {}).get("sources") or []
    if sources:
        st.markdown("**Training data** (offline Debian package)")
        st.dataframe(pd.DataFrame(sources), hide_index=True, width="stretch")
    show_training_and_card(ck, card)


def show_lm_card(ck: CheckpointInfo, card: dict) -> None:
    """A language model: size, held-out scores, architecture, data, licence and training."""
    metrics = card.get("metrics") or {}
    held = metrics.get("heldout_austen") or {}
    training = card.get("training", {})
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{(ck.parameters or 0) / 1e6:.1f} M")
    if isinstance(held.get("perplexity"), int | float):
        cols[1].metric(
            "Held-out perplexity", f"{held['perplexity']:.1f}", help="Austen chapters never seen in training"
        )
    if isinstance(held.get("bits_per_byte"), int | float):
        cols[2].metric(
            "Bits per byte", f"{held['bits_per_byte']:.3f}", help="held-out Austen prose; lower is better"
        )
    if training.get("tokens_seen"):
        cols[3].metric(
            "Tokens seen",
            f"{training['tokens_seen'] / 1e6:.1f} M",
            help=f"{training.get('steps')} steps, {training.get('wall_clock_minutes')} min",
        )
    left, right = st.columns(2)
    with left:
        st.markdown("**Architecture**")
        st.dataframe(
            _architecture_rows(card, ck.parameters, ck.weight_bytes), hide_index=True, width="stretch"
        )
    with right:
        st.markdown("**Metrics**")
        rows = [{"set": k, **v} for k, v in metrics.items() if isinstance(v, dict) and "perplexity" in v]
        if rows:
            st.dataframe(
                pd.DataFrame(rows)[["set", "perplexity", "bits_per_byte", "tokens", "bytes"]],
                hide_index=True,
                width="stretch",
            )
    data = card.get("training_data", {})
    if data.get("sources"):
        st.markdown("**Training data** (offline Debian packages)")
        st.dataframe(
            pd.DataFrame(data["sources"])[
                ["name", "description", "package", "licence", "documents", "characters"]
            ],
            hide_index=True,
            width="stretch",
        )
        if data.get("split_rule"):
            st.caption(f"Splits: {data['split_rule']}.")
    if card.get("licence"):
        st.caption("Licence: " + "; ".join(f"{k}: {v}" for k, v in card["licence"].items()))
    show_training_and_card(ck, card, curve=True)


CARD_VIEWS = {"tef": show_tef_card, "image": show_image_card, "lm": show_lm_card}  # one renderer per kind


def show_checkpoint(ck: CheckpointInfo) -> None:
    card = ck.card or {}
    with st.container(border=True):
        st.markdown(f"#### `{ck.name}`")
        if not ck.usable:
            st.error(literal(f"Unusable checkpoint: {ck.error}"), icon=":material/error:")
            return
        if not card:
            st.info("This checkpoint has no card (card.json or README.md).")
            return
        if "error" in card:
            st.warning(literal(f"The model card cannot be read: {card['error']}"))
            return
        if card.get("summary"):
            st.markdown(card["summary"])
        if "markdown" in card:
            st.text(card["markdown"][:4000])
            return
        CARD_VIEWS[ck.kind](ck, card)


for ck in checkpoints:
    # one malformed card must not hide the others
    guarded(f"Showing checkpoint {ck.name!r}", show_checkpoint, ck)
