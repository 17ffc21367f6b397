"""python -m zoo list | info NAME | predict NAME IMAGE... | export NAME [--onnx PATH] [--int8] | bench NAME... |
annotate INPUT --model NAME --out DIR | push | convert"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import registry
from .registry import ZooError


def cmd_list(a) -> int:
    # Published landmarkers unless asked: recipe-only entries have no weights to load.
    names = registry.list_models(dataset=a.dataset, backbone=a.backbone, arch=a.arch,
                                 published=None if a.all else True, kind=None if a.all else "landmarker")
    rows = [("name", "arch", "backbone", "dataset", "points", "params", "status", "NME")]
    for n in names:
        e = registry.get(n)
        nme = e.metrics.get("nme")
        rows.append((n, e.arch, e.arch_args.get("backbone", "mobilenet_v2" if e.arch == "mobilefan" else "-"),
                     e.dataset or "-", e.scheme or "-", f"{e.params / 1e6:.1f}M" if e.params else "-", e.status,
                     f"{100 * nme:.2f}% ({e.metrics.get('split', '')})" if nme is not None else "-"))
    if a.json:
        print(json.dumps([registry.get(n).to_dict() for n in names], indent=1))
        return 0
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(x) for v, x in zip(r, w)))
    return 0


def cmd_info(a) -> int:
    e = registry.get(a.name)
    print(json.dumps(e.to_dict(), indent=1) if a.json else registry.describe(e))
    return 0


def cmd_predict(a) -> int:

    import zoo
    from .draw import draw_faces

    lm = zoo.load(a.name, backend=a.backend, detector=a.detector)
    status = 0
    results = []
    for i, path in enumerate(a.images):
        try:
            faces = lm(path)
        except ZooError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
            continue
        results.append({"image": str(path), "faces": [f.to_dict() for f in faces],
                        "timings_ms": {k: round(v, 2) for k, v in lm.timings.items()}})
        if not a.json:
            print(f"{path}: {len(faces)} face(s); " + ", ".join(f"{k} {v:.1f} ms" for k, v in lm.timings.items()))
        if a.out:
            from PIL import Image
            out = Path(a.out)
            if len(a.images) > 1:
                out = out.with_name(f"{out.stem}_{i}{out.suffix or '.png'}")
            Image.fromarray(draw_faces(zoo.load_image(path), faces, lm.scheme)).save(out)
    if a.json:
        print(json.dumps(results, indent=1))
    return status


def cmd_export(a) -> int:
    import zoo
    from .hub import local_dir

    # Without --onnx the graph goes to the zoo's cache, never into the current folder (it can be 50 MB).
    dst = a.onnx if a.onnx is not None else local_dir() / a.name / f"{a.name}.onnx"
    if dst.is_dir():
        raise ZooError(f"--onnx {dst} is a folder: give a file path, e.g. {dst / (a.name + '.onnx')}")
    if a.int8:
        return export_int8(a.name, a.onnx)
    info = zoo.load(a.name, detector=None).export_onnx(dst)
    print(json.dumps(info, indent=1))
    print(f"wrote {dst}", file=sys.stderr)
    return 0


def export_int8(name: str, dst: Path | None) -> int:
    """The static int8 graph (zoo.onnx_backend), made in the zoo cache; copied to `dst` when given."""
    import shutil

    import zoo
    from .onnx_backend import int8_refusal

    lm = zoo.load(name, backend="onnx-int8", detector=None, int8_guard=False)
    if lm.backend != "onnx-int8":
        raise ZooError(f"no int8 graph for {name}: no training faces to calibrate on (set $ZOO_CALIB_DATA to "
                       "the dataset's root, e.g. ../shared/data/300w)")
    src = lm.runner.path
    if dst is not None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    note = json.loads(src.with_suffix(".json").read_text()) if src.with_suffix(".json").exists() else {}
    why = int8_refusal(registry.get(name))
    print(json.dumps({"path": str(dst or src), "bytes": src.stat().st_size, **note,
                      "zoo.load uses it": why is None, "refused because": why}, indent=1))
    print(f"wrote {dst or src}", file=sys.stderr)
    return 0


def cmd_annotate(a) -> int:
    import zoo
    from .annotate import annotate

    lm = zoo.load(a.model, backend=a.backend, detector=a.detector)
    rep = annotate(a.input, lm, a.out, images=a.images, track=not a.no_track, progress=not a.no_progress,
                   review_below=a.review_below)
    print(f"{a.out}: annotated {rep.done}, skipped {rep.skipped} (done before), {rep.faces} face(s); "
          f"{len(rep.failed)} unreadable (listed in {Path(a.out) / 'report.json'})")
    if a.review_below is not None:
        print(f"{len(rep.review)} face(s) with mean landmark confidence under {a.review_below:g} to review "
              f"(listed in report.json, least confident first)")
    for f in rep.failed:
        print(f"  {f['file']}: {f['error']}", file=sys.stderr)
    return 0


def cmd_bench(a) -> int:
    from .bench import format_table, run_bench, save_json

    peer_paths = {}
    for item in a.peer_path or []:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ZooError(f"--peer-path takes NAME=FILE (e.g. pfld_ghostone=model.onnx), not {item!r}")
        peer_paths[name] = Path(path)
    res = run_bench(a.names, a.backend, a.threads, faces=a.faces, repeats=a.repeats, image=a.image,
                    detector=a.detector[0], peer_paths=peer_paths, detectors=a.detector, track=a.track,
                    track_frames=a.track_frames, reference=a.reference, photos=a.photos, max_side=a.max_side,
                    limit=a.limit)
    print(format_table(res))
    if a.json:
        save_json(res, Path(a.json))
    return 0


def cmd_push(a) -> int:
    import zoo

    from .hub import repo_url

    sha = zoo.push(a.folder, a.repo_id, token=a.token, revision=a.revision, tag=a.tag, private=a.private)
    print(f"pushed {a.folder} to {repo_url(a.repo_id)} (branch {a.revision or 'main'}"
          + (f", tag {a.tag}" if a.tag else "") + ")")
    print(f"revision {sha}")
    print(f"pin it:  zoo.from_pretrained({a.repo_id!r}, revision={sha!r})")
    return 0


def cmd_hub(a) -> int:
    import time

    from .hub_server import HubServer

    root = Path(a.root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    server = HubServer(token=a.token, port=a.port, host=a.host, user=a.user, root=root).start()
    n = len(server.repos)
    print(f"serving a Hub-compatible API at {server.url} ({n} repo(s) kept in {root}); Ctrl-C stops it")
    print(f"point clients at it:  export HF_ENDPOINT={server.url}" + ("   (and HF_TOKEN=<the token>)" if a.token else ""))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_convert(a) -> int:
    from .convert import convert_checkpoint
    from .hub import local_dir

    e = registry.get(a.name)
    if e.arch == "pipnet":   # the PIPNet authors' release: their state_dict + the mean face it was trained with
        from .pipnet_release import convert_release

        if not a.meanface:
            raise ZooError(f"{e.name} converts from the PIPNet authors' checkpoint with their mean face: add "
                           "--meanface PATH/meanface.txt (data/<DATASET>/meanface.txt in their repository)")
        done = convert_release(e.name, Path(a.src), Path(a.meanface), Path(a.out) if a.out else None)
        print(f"{done.folder}\nsha256 {done.weights_sha256} (converted from {Path(a.src).name}, "
              f"sha256 {done.source_sha256})")
        if done.stored_with_pin:
            print(f"note: {e.name} has published weights of its own, which zoo.load({e.name!r}) keeps loading; "
                  f"load this conversion with zoo.load_folder({str(done.folder)!r})")
        elif a.out:
            print(f"note: zoo.load({e.name!r}) looks in {local_dir() / e.name}; "
                  f"load this folder with zoo.load_folder({str(done.folder)!r})")
        return 0
    if a.meanface:
        raise ZooError(f"--meanface is for PIPNet entries; {e.name} is a {e.arch}")
    if e.arch == "yunet":    # an ONNX file used as it is: checked against the pin and copied where zoo looks
        from .detectors import place_file

        print(f"{place_file(e.name, a.src)}\nsha256 {e.hub.sha256}")
        return 0
    dst = Path(a.out) if a.out else local_dir() / e.name / e.hub.filename
    dst.parent.mkdir(parents=True, exist_ok=True)
    info = convert_checkpoint(Path(a.src), dst)
    if e.hub.sha256 and info["sha256"] != e.hub.sha256:
        dst.unlink()
        raise ZooError(f"{a.src} converts to sha256 {info['sha256']}, not the {e.hub.sha256} pinned for {e.name}")
    print(f"{dst}\nsha256 {info['sha256']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zoo", description="Facial-landmark model zoo")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="list the zoo's entries")
    s.add_argument("--dataset")
    s.add_argument("--backbone")
    s.add_argument("--arch")
    s.add_argument("--published", action="store_true", help="only entries with weights (the default)")
    s.add_argument("--all", action="store_true", help="every entry: recipe-only landmarkers and detectors too")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("info", help="an entry's card: preprocessing, Hub location, metrics")
    s.add_argument("name")
    s.add_argument("--json", action="store_true", help="the registry entry as JSON")
    s.set_defaults(fn=cmd_info)
    s = sub.add_parser("predict", help="landmarks for images")
    s.add_argument("name")
    s.add_argument("images", nargs="+", type=Path)
    s.add_argument("--out", help="annotated PNG (numbered when several images)")
    s.add_argument("--json", action="store_true", help="print faces as JSON")
    s.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    s.add_argument("--detector", default="auto", help="auto (best on this machine: yunet, faceboxes_v2, haar) or a name")
    s.set_defaults(fn=cmd_predict)
    s = sub.add_parser("export", help="export to ONNX and check against torch")
    s.add_argument("name")
    s.add_argument("--onnx", type=Path, metavar="PATH",
                   help="output file (default: the zoo cache, ~/.cache/facezoo/NAME/NAME.onnx; the path is printed)")
    s.add_argument("--int8", action="store_true", help="the static int8 graph (QDQ, per-channel, U8S8) calibrated "
                                                       "on training crops (default path: the zoo cache)")
    s.set_defaults(fn=cmd_export)
    s = sub.add_parser("bench", help="median latency per stage and per face")
    s.add_argument("names", nargs="+", help="zoo entries and/or peers (dlib, dlib_givenbox, pfld_ghostone); "
                                            "a peer that cannot run here is skipped with the reason")
    s.add_argument("--backend", nargs="+", default=["torch"], choices=["torch", "onnx", "onnx-int8"])
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--faces", type=int, default=1)
    s.add_argument("--repeats", type=int, default=20)
    s.add_argument("--image", type=Path)
    s.add_argument("--detector", nargs="+", default=["auto"],
                   help="one row per detector for zoo entries (auto: the best here, as zoo.load; yunet, "
                        "faceboxes_v2, haar); PFLD uses the first (dlib and MediaPipe use their own)")
    s.add_argument("--track", action="store_true", help="also time zoo.track's tracker per entry (first detector)")
    s.add_argument("--track-frames", type=int, default=60)
    s.add_argument("--photos", nargs="+", type=Path, metavar="PATH",
                   help="end to end per photo over these folders/images (e.g. 300-W common: "
                        "../shared/data/300w/lfpw/testset ../shared/data/300w/helen/testset) instead of one image")
    s.add_argument("--max-side", type=int, default=512, help="--photos: photos resized to at most this many px")
    s.add_argument("--limit", type=int, help="--photos: the first N photos")
    s.add_argument("--reference", help="row the ratios are to: NAME or NAME:BACKEND (default: the first row)")
    s.add_argument("--peer-path", action="append", metavar="NAME=FILE",
                   help="a peer's model file, e.g. pfld_ghostone=../shared/weights/pfld_ghostone/"
                        "PFLD_GhostOne_112_1_opt_sim.onnx (default: under $ZOO_HOME)")
    s.add_argument("--json", help="also write the results here")
    s.set_defaults(fn=cmd_bench)
    s = sub.add_parser("annotate", help="landmarks for a folder of images or a video: JSON per image, CSV, report")
    s.add_argument("input", type=Path, help="a folder of images (searched recursively), an image or a video file")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True, type=Path, help="output folder (a second run resumes: done files skipped)")
    s.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    s.add_argument("--detector", default="auto")
    s.add_argument("--images", action="store_true", help="also write annotated PNGs under OUT/images")
    s.add_argument("--no-track", action="store_true", help="video: detect in every frame instead of tracking")
    s.add_argument("--review-below", type=float, metavar="T",
                   help="list faces whose mean landmark confidence (Face.scores) is under T in report.json")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_annotate)
    s = sub.add_parser("push", help="publish a Hub-ready folder")
    s.add_argument("folder", type=Path)
    s.add_argument("repo_id")
    s.add_argument("--token")
    s.add_argument("--revision", help="branch (default main)")
    s.add_argument("--tag")
    s.add_argument("--private", action="store_true")
    s.set_defaults(fn=cmd_push)
    s = sub.add_parser("hub", help="run a local Hub-compatible server (offline or private lab)")
    hs = s.add_subparsers(dest="hub_cmd", required=True)
    s = hs.add_parser("serve", help="serve repos kept in a folder; clients use HF_ENDPOINT=http://HOST:PORT")
    s.add_argument("--root", default="~/.cache/facezoo/hub", help="folder that keeps the repos")
    s.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve the lab's network")
    s.add_argument("--port", type=int, default=8999)
    s.add_argument("--token", help="require this bearer token on every request")
    s.add_argument("--user", default="lab", help="the name whoami reports")
    s.set_defaults(fn=cmd_hub)
    s = sub.add_parser("convert", help="convert a checkpoint from elsewhere to the zoo's safetensors")
    s.add_argument("name", help="zoo entry, e.g. faceboxes_v2 or pipnet_r18_wflw")
    s.add_argument("--from", dest="src", required=True, help="the original .pth (read with weights_only=True)")
    s.add_argument("--meanface", help="PIPNet entries: the authors' meanface.txt the checkpoint was trained with")
    s.add_argument("--out", help="destination: the .safetensors file (faceboxes_v2) or the model folder (PIPNet) "
                                 "(default: NAME/ under $ZOO_HOME, else under ~/.cache/facezoo)")
    s.set_defaults(fn=cmd_convert)
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return a.fn(a)
    except (ZooError, FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
