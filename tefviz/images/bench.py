"""`python -m tefviz bench images`: what the Images page pays per interaction and what dropping
tokens buys, every image checkpoint, the all-tokens run as the baseline in the same process.

- rerender: one image at a new setting (the classifier twice: all tokens and the setting, plus
  the figures of the main row), as when a slider moves;
- subset: the whole evaluation table (2,000 images at every setting of the tokenizer);
- throughput: images per second over the subset with every token vs at a reduced budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from tefviz.bench import describe_device, save_results, synchronize, time_calls
from tefviz.device import device_of
from tefviz.images.checkpoint import load_image_classifier
from tefviz.images.evaluate import eval_inputs, evaluate_model, predict
from tefviz.images.model import ImageClassifier, Selection
from tefviz.images.view import analyse_image, main_figures


def _median(fn, repeats: int, device: torch.device) -> float:
    return time_calls(fn, repeats, device)["median_s"]


def _seconds(fn, device: torch.device) -> tuple[float, object]:
    """One timed call, to the end of its GPU work."""
    synchronize(device)
    t = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - t, out


def rerender(model: ImageClassifier, image: np.ndarray, sel: Selection) -> None:
    """The page's work after a slider move, minus Streamlit: classify and build its figures (the
    page's own list, `main_figures`)."""
    res = analyse_image(model, image, sel)
    for spec in main_figures(model, res, image, sel):
        spec.build()


def bench_images(checkpoints: list[Path], out: Path | None, repeats: int = 5, tables: bool = True) -> dict:
    """Every checkpoint: re-render per setting, subset throughput and (with `tables`) the whole
    evaluation table, on the device policy's device."""
    x, y = eval_inputs()
    image = x[3, 0].numpy()
    results = {"device": None, "threads": torch.get_num_threads(), "images": len(x), "models": {}}
    for path in checkpoints:
        model = load_image_classifier(path)
        dev = device_of(model)
        results["device"] = describe_device(dev, next(model.parameters()).dtype)
        reduced = model.tokenizer.reduced_setting(model.cfg)
        r: dict = {"tokenizer": model.cfg.tokenizer, "reduced_setting": repr(reduced)}
        with torch.no_grad():
            r["rerender_all_tokens_ms"] = round(
                1e3 * _median(lambda m=model: rerender(m, image, Selection()), repeats, dev), 1
            )
            r["rerender_reduced_ms"] = round(
                1e3 * _median(lambda m=model, s=reduced: rerender(m, image, s), repeats, dev), 1
            )
            all_s, _ = _seconds(lambda m=model: predict(m, x, Selection()), dev)
            red_s, (_, tokens, _) = _seconds(lambda m=model, s=reduced: predict(m, x, s), dev)
        r["subset_all_tokens_s"] = round(all_s, 2)
        r["subset_reduced_s"] = round(red_s, 2)
        r["reduced_mean_tokens"] = round(float(tokens.float().mean()), 1)
        r["throughput_all_tokens_img_s"] = round(len(x) / all_s)
        r["throughput_reduced_img_s"] = round(len(x) / red_s)
        if tables:
            table = evaluate_model(model, x, y, progress=False)
            r["eval_table_s"] = table["seconds"]
            r["eval_table_settings"] = len(table["rows"])
        results["models"][path.name] = r
        print(
            f"{path.name:24s} rerender {r['rerender_all_tokens_ms']:6.1f} ms (all) "
            f"{r['rerender_reduced_ms']:6.1f} ms ({reduced}); subset {r['subset_all_tokens_s']:.2f} s all, "
            f"{r['subset_reduced_s']:.2f} s at {r['reduced_mean_tokens']} tokens"
            + (f"; table ({r['eval_table_settings']} settings) {r['eval_table_s']:.1f} s" if tables else "")
        )
    print(f"on {results['device']}")
    save_results(results, out)
    return results
