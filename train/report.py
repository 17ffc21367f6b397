"""python -m train.report [--bench BENCH.json] [--peer PEER.json ...] [--ced PNG --peer-csv NAME=CSV ...]

The README's results table, built from what commands measured: the registry's metrics (written by
train.publish from train.evaluate), `zoo bench --json` output, and `train.evaluate --json` of peers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from zoo import registry


def _pct(v) -> str:
    return f"{100 * v:.2f}" if v is not None else "-"


def table(bench: dict | None, peers: list[dict]) -> str:
    ms = {}
    for r in (bench or {}).get("results", []):
        ms[(r["name"], r["backend"])] = r["per_face"]
    rows = ["| entry | params | NME % (300W common) | FR@0.1 % | AUC@0.1 | ms/face torch | ms/face onnx | "
            "paper NME % (full / common) |", "|---|---|---|---|---|---|---|---|"]
    for name in registry.list_models(dataset="300w"):
        e = registry.get(name)
        if not e.published:
            continue
        m = e.metrics
        paper = f"{e.paper.get('nme_full', '-')} / {e.paper.get('nme_common', '-')}"
        rows.append(f"| `{name}` | {e.params / 1e6:.1f} M | {_pct(m.get('nme'))} | {_pct(m.get('fr'))} | "
                    f"{m.get('auc', 0):.3f} | {ms.get((name, 'torch'), '-')} | {ms.get((name, 'onnx'), '-')} | {paper} |")
    for p in peers:
        rows.append(f"| {p['model']} (peer) | - | {_pct(p['nme'])} | {_pct(p['fr'])} | {p['auc']:.3f} | - | - | - |")
    n = {registry.get(x).metrics.get("n") for x in registry.list_models(dataset="300w", published=True)}
    rows.append(f"\n(n = {', '.join(str(v) for v in n if v)} faces; {bench['hardware'] if bench else ''})")
    return "\n".join(rows)


def per_image_errors(csv_path: Path) -> np.ndarray:
    rows = csv_path.read_text().splitlines()[1:]
    return np.array([float(r.rsplit(",", 1)[1]) for r in rows if r])


def ced_plot(path: Path, peers: dict[str, Path]) -> Path:
    """One CED plot: every published 300W entry (its bundled per-image errors) and the peers' CSVs."""
    from zoo.hub import BUNDLED_DIR

    from zoo.metrics import plot_ced

    curves = {n: per_image_errors(BUNDLED_DIR / n / "per_image_nme.csv")
              for n in registry.list_models(dataset="300w", published=True)}
    curves.update({n: per_image_errors(p) for n, p in peers.items()})
    return plot_ced(curves, path, title="300-W common: cumulative error distribution")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.report", description=__doc__.splitlines()[0])
    p.add_argument("--bench", type=Path)
    p.add_argument("--peer", type=Path, nargs="*", default=[])
    p.add_argument("--ced", type=Path, help="also write one CED plot of the published 300W entries and peers")
    p.add_argument("--peer-csv", nargs="*", default=[], help="NAME=CSV per-image errors of a peer (train.evaluate --csv)")
    a = p.parse_args(argv)
    if a.ced:
        ced_plot(a.ced, {k: Path(v) for k, v in (x.split("=", 1) for x in a.peer_csv)})
    bench = json.loads(a.bench.read_text()) if a.bench else None
    print(table(bench, [json.loads(x.read_text()) for x in a.peer]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
