"""Leaderboard rendering: markdown tables and matplotlib plots from stored evaluation JSON (docs/results/).

Nothing here measures anything: every cell and every bar is read from a result document that
`python -m train.leaderboard` wrote from `train.evaluate`'s functions (and ms/face from `zoo bench --json`).
A result document is the evaluate JSON plus: "column" (which table column it fills), "label" (row name),
"kind" ("zoo" or "peer"), "params", "errors" (per-face NME, for CED curves) and "command".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from zoo.metrics import plot_ced


def write_block(readme: Path, marker: str, body: str) -> None:
    """Replace what sits between `<!-- marker:start -->` and `<!-- marker:end -->` in `readme` with `body`."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme}: no {start} ... {end} markers to put the table between")
    head, rest = text.split(start, 1)
    readme.write_text(head + start + "\n" + body.rstrip("\n") + "\n" + end + rest.split(end, 1)[1])


@dataclass(frozen=True)
class Column:
    key: str          # "300w_common"
    title: str        # "300-W common"
    dataset: str      # reader name
    split: str
    points: str       # scheme scored in


COLUMNS = (
    Column("300w_common", "300-W common", "300w", "common", "68"),
    Column("wflw_test", "WFLW test (98 pts)", "wflw", "test", "98"),
    Column("wflw_test_68", "WFLW test as WFLW-68", "wflw", "test", "68"),
)
PROTOCOL_TITLES = {"gt": "GT crop"}


def protocol_title(key: str) -> str:
    return PROTOCOL_TITLES.get(key, key.removeprefix("det-").replace("faceboxes_v2", "FaceBoxesV2")
                               .replace("haar", "Haar") + " detector")


def _pct(v: Any, digits: int = 2) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{100 * v:.{digits}f}"


def index(docs: Iterable[dict]) -> dict[tuple[str, str, str], dict]:
    """(model, column, protocol) -> result document."""
    return {(d["model"], d["column"], d["protocol"]): d for d in docs}


def lookup(at: dict[tuple[str, str, str], dict], model: str, column: str, protocol: str) -> dict | None:
    """The result for a cell. A peer that always uses its own detector (dlib: HOG) has one measurement for
    both protocols, stored under "gt" with boxes "own detector ..."; it fills its detector cells too."""
    d = at.get((model, column, protocol))
    if d is None and protocol != "gt":
        own = at.get((model, column, "gt"))
        d = own if own is not None and str(own.get("boxes", "")).startswith("own detector") else None
    return d


def _rows(docs: Sequence[dict]) -> list[tuple[str, str]]:
    """(model, label) in order: zoo entries first (registry order), then peers by name."""
    from zoo import list_models

    order = {n: i for i, n in enumerate(list_models())}     # zoo rows in registry order
    seen: dict[str, tuple[str, str]] = {}
    for d in sorted(docs, key=lambda d: (d.get("kind") != "zoo", order.get(d["model"], len(order)), d["model"])):
        seen.setdefault(d["model"], (d["model"], d.get("label", d["model"])))
    return list(seen.values())


def _cell(d: dict | None) -> str:
    if d is None:
        return "-"
    s = _pct(d["nme"])
    return s + (f" ({d['missed']} missed)" if d.get("missed") else "")


def inner_nme(d: dict | None) -> float | None:
    """NME over the inner points (every region but the jaw), from the stored per-region NME: the regions
    partition the scheme's points, so the point-weighted mean of the inner regions is that NME. Schemes draw
    the jaw differently (17 vs 33 points, MediaPipe's mesh has no contour of its own), so this column compares
    models across schemes where the full NME cannot."""
    if d is None or not d.get("regions"):
        return None
    from zoo.schemes import get_scheme

    if not d.get("points"):
        return None
    regions = get_scheme(d["points"]).regions
    parts = [(len(regions[r]), v) for r, v in d["regions"].items() if r != "jaw" and r in regions]
    return sum(n * v for n, v in parts) / sum(n for n, _ in parts) if parts else None


def speed_of(bench: dict | None, model: str) -> str:
    """Fastest median ms/face of `model` in a `zoo bench --json` result, with its backend."""
    rows = [r for r in (bench or {}).get("results", []) if r.get("name") == model and r.get("per_face") is not None]
    if not rows:
        return "-"
    best = min(rows, key=lambda r: r["per_face"])
    return f"{best['per_face']:.1f} ({best['backend']})"


def int8_of(model: str) -> str:
    """A zoo entry's int8 NME (%) as `python -m train.int8 NAME --write` stored it in the registry."""
    from zoo import registry

    try:
        m = registry.get(model).metrics
    except registry.ZooError:           # a peer
        return "-"
    return _pct(m.get("nme_int8")) + (f" ({m['split_int8']})" if m.get("nme_int8") is not None else "")


def main_table(docs: Sequence[dict], protocols: Sequence[str], bench: dict | None = None) -> str:
    """Rows = models, columns = dataset x protocol (NME %, missed faces), int8 NME, params and ms/face."""
    at = index(docs)
    cols = [(c, p) for c in COLUMNS for p in protocols if any(k[1:] == (c.key, p) for k in at)]
    inner = [c for c, p in cols if p == "gt"]
    head = ["model", *(f"{c.title}, {protocol_title(p)}" for c, p in cols),
            *(f"{c.title}, inner points (no jaw), GT crop" for c in inner), "int8 NME (GT crop)", "params", "ms/face"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, label in _rows(docs):
        params = next((d.get("params") for d in docs if d["model"] == model and d.get("params")), None)
        cells = [_cell(lookup(at, model, c.key, p)) for c, p in cols]
        cells += [_pct(inner_nme(lookup(at, model, c.key, "gt"))) for c in inner]
        lines.append("| " + " | ".join([label, *cells, int8_of(model), f"{params / 1e6:.2f} M" if params else "-",
                                        speed_of(bench, model)]) + " |")
    return "\n".join(lines)


def headline_table(docs: Sequence[dict], column: str) -> str:
    rows = [d for d in docs if d["column"] == column]
    lines = ["| model | protocol | boxes | n | NME % | FR@0.1 % | AUC@0.1 | missed |", "|---|---|---|---|---|---|---|---|"]
    for model, label in _rows(rows):
        for d in sorted((d for d in rows if d["model"] == model), key=lambda d: d["protocol"] != "gt"):
            lines.append(f"| {label} | {protocol_title(d['protocol'])} | {d.get('boxes', '-')} | {d['n']} | "
                         f"{_pct(d['nme'])} | {_pct(d['fr'])} | {d['auc']:.3f} | {d.get('missed', 0)} |")
    return "\n".join(lines)


def breakdown_table(docs: Sequence[dict], column: str, protocol: str, field: str) -> str:
    """One row per model, one column per region / subset / yaw bin (NME %; n in the header for groups)."""
    rows = [d for d in docs if d["column"] == column and d["protocol"] == protocol and d.get(field)]
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for d in rows for k in d[field]))
    if field == "regions":
        head = keys
    else:
        ns = {k: next(d[field][k]["n"] for d in rows if k in d[field]) for k in keys}
        head = [f"{k} (n={ns[k]})" for k in keys]
    lines = ["| model | " + " | ".join(head) + " |", "|---|" + "---|" * len(keys)]
    for model, label in _rows(rows):
        d = next(x for x in rows if x["model"] == model)
        vals = [d[field].get(k) for k in keys]
        vals = [v if not isinstance(v, dict) else v["nme"] for v in vals]
        lines.append(f"| {label} | " + " | ".join(_pct(v) for v in vals) + " |")
    return "\n".join(lines)


def robustness_table(docs: Sequence[dict], column: str, protocol: str = "gt") -> str:
    rows = [d for d in docs if d["column"] == column and d["protocol"] == protocol and d.get("robustness")]
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for d in rows for k in d["robustness"]))
    lines = ["| model | clean NME % | " + " | ".join(f"{k}: NME % (change)" for k in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for model, label in _rows(rows):
        d = next(x for x in rows if x["model"] == model)
        cells = []
        for k in keys:
            r = d["robustness"].get(k)
            cells.append("-" if r is None else f"{_pct(r['nme'])} ({100 * r['d_nme']:+.2f})"
                         + (f", {r['missed']} missed" if r.get("missed") else ""))
        lines.append(f"| {label} | {_pct(d['nme'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ plots
def _figure(width: float = 7.0, height: float = 4.0):
    # Figure + Agg canvas directly: no pyplot, so no global backend state and no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def grouped_bars(groups: Sequence[str], series: dict[str, Sequence[float]], path: Path, title: str,
                 ylabel: str) -> Path:
    """One bar per (group, series): e.g. regions x models. Values in percent already."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (label, vals) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, np.asarray(vals, float), width, label=label)
    ax.set_xticks(x, groups)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plots(docs: Sequence[dict], out: Path) -> list[Path]:
    """CED per column and protocol, per-region bars and robustness bars per column (ground-truth crops)."""
    written = []
    for c in COLUMNS:
        for protocol in dict.fromkeys(d["protocol"] for d in docs if d["column"] == c.key):
            rows = [d for d in docs if d["column"] == c.key and d["protocol"] == protocol and d.get("errors")]
            if rows:
                curves = {label.strip("`"): np.array([np.nan if e is None else e for e in next(
                    d for d in rows if d["model"] == m)["errors"]], float) for m, label in _rows(rows)}
                written.append(plot_ced(curves, out / f"ced_{c.key}_{protocol}.png",
                                        title=f"{c.title}, {protocol_title(protocol)}: CED (n={rows[0]['n']})"))
        gt = [d for d in docs if d["column"] == c.key and d["protocol"] == "gt"]
        with_regions = [d for d in gt if d.get("regions")]
        if with_regions:
            regions = list(dict.fromkeys(k for d in with_regions for k in d["regions"]))
            series = {label.strip("`"): [100 * next(d for d in with_regions if d["model"] == m)["regions"].get(r, np.nan)
                              for r in regions] for m, label in _rows(with_regions)}
            written.append(grouped_bars(regions, series, out / f"regions_{c.key}.png",
                                        f"{c.title}: NME per face region (GT crop)", "NME %"))
        with_rob = [d for d in gt if d.get("robustness")]
        if with_rob:
            names = list(dict.fromkeys(k for d in with_rob for k in d["robustness"]))
            series = {label.strip("`"): [100 * next(d for d in with_rob if d["model"] == m)["robustness"].get(
                k, {"d_nme": np.nan})["d_nme"] for k in names] for m, label in _rows(with_rob)}
            written.append(grouped_bars(names, series, out / f"robustness_{c.key}.png",
                                        f"{c.title}: NME change under perturbation (GT crop)", "NME change (points)"))
    return written


def leaderboard_markdown(docs: Sequence[dict], protocols: Sequence[str], bench: dict | None, command: str,
                         images: Sequence[Path] = (), image_root: Path | None = None) -> str:
    """docs/leaderboard.md: the main table, then per column its headline, breakdowns, robustness and plots."""
    out = ["# Leaderboard", "",
           f"Generated by `{command}` from the result files in `results/` beside this page (one JSON per model, dataset and "
           "protocol; each holds the `train.evaluate` command that reproduces it). NME in % of the inter-ocular "
           "distance (outer eye corners); FR and AUC at 0.1; a face the detector missed counts as a failure and "
           "is left out of NME.", "",
           main_table(docs, protocols, bench), ""]
    if bench:
        from zoo.bench import format_table

        out += [f"ms/face: median preprocess + model + decode per face, fastest backend, from "
                f"`{bench.get('command', 'python -m zoo bench --json')}` (one run on a shared, loaded machine). "
                "Params: the model's parameters. Its stages (ms):", "", format_table(bench), ""]
    imgs = {p.name: p for p in images}
    for c in COLUMNS:
        if not any(d["column"] == c.key for d in docs):
            continue
        out += [f"## {c.title}", "", headline_table(docs, c.key), ""]
        for protocol in protocols:
            for field, what in (("regions", "NME % per face region"), ("subsets", "NME % per attribute subset / folder"),
                                ("pose", "NME % per estimated |yaw| bin")):
                t = breakdown_table(docs, c.key, protocol, field)
                if t:
                    out += [f"{what} ({protocol_title(protocol)}):", "", t, ""]
        t = robustness_table(docs, c.key)
        if t:
            out += ["Robustness (GT crop; the same faces perturbed; change against clean in NME points):", "", t, ""]
        for name in (f"ced_{c.key}_{p}.png" for p in protocols):
            if name in imgs:
                out += [f"![CED {c.title}]({_rel(imgs[name], image_root)})", ""]
        for prefix in ("regions", "robustness"):
            if f"{prefix}_{c.key}.png" in imgs:
                out += [f"![{prefix} {c.title}]({_rel(imgs[f'{prefix}_{c.key}.png'], image_root)})", ""]
    return "\n".join(out).rstrip() + "\n"


def _rel(path: Path, root: Path | None) -> str:
    return str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)
