"""python -m train.report [--bench BENCH.json] [--peer PEER.json ...]

The README's results table, built from what commands measured: the registry's metrics (written by
train.publish from train.evaluate), `zoo bench --json` output, and `train.evaluate --json` of peers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zoo import registry


def _pct(v) -> str:
    return f"{100 * v:.2f}" if v is not None else "-"


def table(bench: dict | None, peers: list[dict]) -> str:
    ms = {}
    for r in (bench or {}).get("results", []):
        ms[(r["model"], r["backend"])] = r["per_face"]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.report", description=__doc__.splitlines()[0])
    p.add_argument("--bench", type=Path)
    p.add_argument("--peer", type=Path, nargs="*", default=[])
    a = p.parse_args(argv)
    bench = json.loads(a.bench.read_text()) if a.bench else None
    print(table(bench, [json.loads(x.read_text()) for x in a.peer]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
