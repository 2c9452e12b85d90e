"""Robustness benchmark: does an image matcher find transformed copies of stolen photos
and reject look-alikes? Run through `bench/robustness`, which creates the venv and builds
the binaries; see bench/README.md.

Generates (or reuses) the stolen, found and negative sets with the testbed's
`robustness_set` example, imports the stolen set into a fresh leakwatch data dir, runs
`leakwatch match --json` over every query file, hashes the same files with imagehash's
pHash and dHash (256 bits each), and prints recall per transform at each method's
zero-false-positive threshold, and leakwatch's recall and false positives at its own
operating point (`matched`).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import imagehash
import numpy as np
from PIL import Image

# Sample pictures that scikit-image ships in its wheel (no download), by skimage.data
# function. The first list joins the stolen set; the second is used as unrelated
# negatives. The right view of the motorcycle stereo pair is left out (neither clearly a
# copy of the left view nor clearly unrelated), and so is `cat` (the same photo as
# `chelsea`).
EXTRA_STOLEN = [
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
    "immunohistochemistry", "moon", "stereo_motorcycle", "page", "retina", "rocket", "text",
]
EXTRA_NEGATIVE = ["binary_blobs", "checkerboard", "logo", "microaneurysms",
                  "shepp_logan_phantom"]

# Transforms a matcher of global perceptual hashes is expected to survive.
BENIGN_PREFIXES = ("jpeg-", "resize-", "brightness", "grayscale", "blur-", "webp")
NEGATIVE_GROUPS = ("same-car", "same-camera", "other-camera", "unrelated")
# Recall on edited copies at which the peers' false alerts are reported.
PEER_RECALL = 0.95
BATCH = 200
INF = math.inf


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--stolen", type=int, default=300, help="stolen camera photos")
    ap.add_argument("--sample", type=int, default=60, help="stolen pictures transformed")
    ap.add_argument("--negatives", type=int, default=300, help="negative pictures")
    ap.add_argument("--keep", metavar="W", help="work dir to keep and reuse")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--leakwatch", required=True, help="path of the leakwatch binary")
    ap.add_argument("--generator", required=True, help="path of the robustness_set binary")
    args = ap.parse_args()

    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="robustness-")
    try:
        report = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=lambda x: None)
        print(f"\nfigures written to {args.json}")


def run(args, work):
    times = {}
    params = {k: getattr(args, k) for k in ("seed", "stolen", "sample", "negatives")}
    params["extra_stolen"] = EXTRA_STOLEN
    params["extra_negative"] = EXTRA_NEGATIVE
    params_path = os.path.join(work, "params.json")
    t = time.monotonic()
    if load_json(params_path) == params and os.path.exists(os.path.join(work, "truth.json")):
        print(f"reusing the sets in {work}", file=sys.stderr)
    else:
        for sub in ("stolen", "found", "negative", "extra"):
            shutil.rmtree(os.path.join(work, sub), ignore_errors=True)
        write_extra(os.path.join(work, "extra"))
        subprocess.run(
            [args.generator, "--out", work, "--seed", str(args.seed), "--stolen",
             str(args.stolen), "--sample", str(args.sample), "--negatives",
             str(args.negatives), "--extra", os.path.join(work, "extra")],
            check=True, stdout=sys.stderr,
        )
        with open(params_path, "w") as f:
            json.dump(params, f)
    times["generate"] = time.monotonic() - t

    truth = load_json(os.path.join(work, "truth.json"))
    stolen = truth["stolen"]
    queries = truth["queries"]
    paths = sorted(queries)
    labels = [s["label"] for s in stolen]

    results = {}
    results["leakwatch"], times["leakwatch"] = run_leakwatch(args.leakwatch, work, paths)
    for name, fn in (("phash16", phash16), ("dhash16", dhash16)):
        t = time.monotonic()
        results[name] = run_peer(fn, work, stolen, paths)
        times[name] = {"total": time.monotonic() - t}

    groups = defaultdict(int)
    for q in queries.values():
        groups[q["group"]] += 1
    report = {
        "params": params,
        "counts": {
            "stolen": len(labels),
            "stolen_extra": sum(1 for s in stolen if s["kind"] == "extra"),
            "queries_by_group": dict(sorted(groups.items())),
            "found": sum(1 for q in queries.values() if q["expected"]),
            "negative": sum(1 for q in queries.values() if not q["expected"]),
        },
        "transforms": truth["transforms"],
        "times": times,
        "methods": {m: evaluate(r, queries, truth["transforms"], m == "leakwatch")
                    for m, r in results.items()},
        "imagehash": imagehash.__version__,
        "work": work if args.keep else None,
    }
    return report


def write_extra(extra):
    """Saves scikit-image's bundled sample pictures as PNG into extra/{stolen,negative}."""
    import skimage.data

    for sub, names in (("stolen", EXTRA_STOLEN), ("negative", EXTRA_NEGATIVE)):
        os.makedirs(os.path.join(extra, sub), exist_ok=True)
        for name in names:
            arr = getattr(skimage.data, name)()
            if isinstance(arr, tuple):  # stereo_motorcycle: (left, right, disparity)
                arr = arr[0]
            if arr.dtype != np.uint8:
                arr = arr.astype(np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                arr = ((arr - lo) / (hi - lo or 1) * 255).round().astype(np.uint8)
            if arr.ndim == 3 and arr.shape[2] == 4:
                arr = arr[:, :, :3]
            Image.fromarray(arr).convert("RGB").save(os.path.join(extra, sub, name + ".png"))


def run_leakwatch(binary, work, paths):
    """Imports the stolen set into a fresh data dir and matches every query file."""
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    t = time.monotonic()
    imp = subprocess.run([binary, "--data-dir", data, "fingerprints", "import", "stolen"],
                         cwd=work, check=True, capture_output=True, text=True)
    t_import = time.monotonic() - t
    print(imp.stdout.strip(), file=sys.stderr)
    out = {}
    t = time.monotonic()
    for i in range(0, len(paths), BATCH):
        batch = paths[i:i + BATCH]
        p = subprocess.run([binary, "--data-dir", data, "match", "--json", "--top", "4", *batch],
                           cwd=work, check=True, capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            matches = rec.get("matches") or []
            alert = rec.get("alert")
            if "error" in rec or not matches:
                out[rec["path"]] = {"label": None, "score": INF, "matched": False,
                                    "alert": None, "error": rec.get("error")}
            else:
                m = matches[0]
                out[rec["path"]] = {"label": m["label"], "score": float(m["distance"]),
                                    "matched": bool(alert and alert["kind"] == "image"),
                                    "alert": alert, "matches": matches}
    t_match = time.monotonic() - t
    missing = [p for p in paths if p not in out]
    for p in missing:
        out[p] = {"label": None, "score": INF, "matched": False, "error": "no output line"}
    return out, {"import": t_import, "match": t_match, "total": t_import + t_match}


def phash16(img):
    return imagehash.phash(img, hash_size=16)


def dhash16(img):
    return imagehash.dhash(img, hash_size=16)


def as_int(h):
    return int("".join("1" if b else "0" for b in h.hash.flatten()), 2)


def hash_file(fn, path):
    with Image.open(path) as img:
        return as_int(fn(img.convert("RGB")))


def run_peer(fn, work, stolen, paths):
    """Nearest stolen hash by Hamming distance. A tie between the nearest stolen pictures
    counts against the query: if several labels share the smallest distance, the top
    label is taken to be a wrong one whenever one of them is wrong."""
    bank = [(s["label"], hash_file(fn, os.path.join(work, s["path"]))) for s in stolen]
    out = {}
    for p in paths:
        h = hash_file(fn, os.path.join(work, p))
        dists = [((h ^ bh).bit_count(), label) for label, bh in bank]
        best = min(d for d, _ in dists)
        tied = sorted(label for d, label in dists if d == best)
        out[p] = {"score": float(best), "tied": tied, "label": tied[0]}
    return out


def evaluate(res, queries, transforms, has_operating_point):
    """Recall per transform at the zero-FP threshold (and at `matched`, if given)."""

    def correct(p):
        r, q = res[p], queries[p]
        if "tied" in r:
            return r["tied"] == [q["expected"]]
        return r["label"] == q["expected"]

    found = [p for p in queries if queries[p]["expected"]]
    negative = [p for p in queries if not queries[p]["expected"]]
    # Scores at which something would alert wrongly: any negative, and any found copy whose
    # nearest stolen picture is not its own.
    bad = [(res[p]["score"], p) for p in negative]
    bad += [(res[p]["score"], p) for p in found if not correct(p)]
    bad = [b for b in bad if b[0] < INF]
    threshold, first_bad = min(bad) if bad else (INF, None)

    def rows(accept):
        by_t = defaultdict(lambda: [0, 0])
        for p in found:
            t = queries[p]["transform"]
            for key in (t, "all", queries[p]["group"]) + (("benign",) if benign(t) else ()):
                by_t[key][1] += 1
                if accept(p):
                    by_t[key][0] += 1
        return {k: {"hit": h, "of": n, "recall": h / n} for k, (h, n) in by_t.items()}

    ev = {
        "zero_fp_threshold": threshold,
        "zero_fp_set_by": None if first_bad is None else {
            "path": first_bad, "group": queries[first_bad]["group"],
            "transform": queries[first_bad]["transform"], "label": res[first_bad]["label"]},
        "recall_zero_fp": rows(lambda p: correct(p) and res[p]["score"] < threshold),
        "top1_correct": rows(correct),
        "errors": sum(1 for p in queries if res[p].get("error")),
    }
    if has_operating_point:
        def alerted(p, kind):
            a = res[p].get("alert")
            return bool(a) and a["kind"] == kind

        def named_right(p):
            return alerted(p, "image") and res[p]["alert"]["label"] == queries[p]["expected"]

        ev["recall_operating_point"] = rows(named_right)
        ev["alerts_operating_point"] = alert_counts(
            queries, found, negative, lambda p: alerted(p, "image"), named_right,
            lambda p: alerted(p, "scene"))
    else:
        # The threshold at which this method finds PEER_RECALL of the edited copies (its
        # nearest stolen picture being the right one), and what it alerts on there.
        # (Or, for a method that never gets that far, the threshold of its best recall.)
        scores = sorted(res[p]["score"] for p in found if correct(p) and res[p]["score"] < INF)
        k = min(math.ceil(PEER_RECALL * len(found)), len(scores)) - 1
        t = scores[k] if k >= 0 else -1
        ev["threshold_at_recall"] = {"recall": PEER_RECALL, "threshold": t}
        ev["alerts_operating_point"] = alert_counts(
            queries, found, negative, lambda p: res[p]["score"] <= t,
            lambda p: correct(p) and res[p]["score"] <= t, lambda p: False)
    return ev


def alert_counts(queries, found, negative, image, named_right, scene):
    """Image alerts on negatives by group, image alerts naming the wrong photo on copies,
    and scene alerts by group."""
    out = {"recall": sum(1 for p in found if named_right(p)) / max(1, len(found))}
    for g in NEGATIVE_GROUPS:
        ps = [p for p in negative if queries[p]["group"] == g]
        out[g] = {"of": len(ps), "image": sum(1 for p in ps if image(p)),
                  "scene": sum(1 for p in ps if scene(p))}
    out["wrong-photo"] = sum(1 for p in found if image(p) and not named_right(p))
    out["copies-as-scene"] = sum(1 for p in found if scene(p))
    return out


def benign(t):
    return t.startswith(BENIGN_PREFIXES)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt_pct(cell):
    return f"{100 * cell['recall']:5.1f}%" if cell else "    -"


def print_report(r):
    c = r["counts"]
    print(f"seed {r['params']['seed']}: {c['stolen']} stolen pictures "
          f"({c['stolen'] - c['stolen_extra']} camera photos, {c['stolen_extra']} scikit-image "
          f"samples); {c['found']} found copies, {c['negative']} negatives")
    print("queries by group: " + ", ".join(f"{g} {n}" for g, n in c["queries_by_group"].items()))
    ms = r["methods"]
    cols = [("leakwatch", "recall_zero_fp", "leakwatch@0FP"),
            ("leakwatch", "recall_operating_point", "leakwatch@op"),
            ("phash16", "recall_zero_fp", "phash16@0FP"),
            ("dhash16", "recall_zero_fp", "dhash16@0FP"),
            ("leakwatch", "top1_correct", "lw top-1"),
            ("phash16", "top1_correct", "ph top-1")]
    print()
    print(f"{'transform':<16}{'n':>5}" + "".join(f"{h:>15}" for _, _, h in cols))
    keys = r["transforms"] + ["benign", "all", "found-camera", "found-extra"]
    for k in keys:
        if k == "benign":
            print("-" * (21 + 15 * len(cols)))
        cell0 = ms["leakwatch"]["recall_zero_fp"].get(k)
        n = cell0["of"] if cell0 else 0
        print(f"{k:<16}{n:>5}" + "".join(
            f"{fmt_pct(ms[m][field].get(k)):>15}" for m, field, _ in cols))
    print()
    print("zero-FP threshold (accept score < T; T = lowest score of a negative or of a copy "
          "whose nearest stolen picture is another):")
    for m, ev in ms.items():
        by = ev["zero_fp_set_by"]
        by_s = f"{by['group']} {by['path']} (transform {by['transform']}, nearest {by['label']})" \
            if by else "nothing"
        print(f"  {m:<10} T = {ev['zero_fp_threshold']:g}   set by {by_s}"
              + (f"   errors {ev['errors']}" if ev["errors"] else ""))
    print()
    print("alerts: leakwatch at its operating point; peers at the threshold that finds "
          f"{100 * PEER_RECALL:.0f}% of the copies (or as many as they can)")
    print(f"{'method':<11}{'recall':>8}{'wrong-photo':>13}"
          + "".join(f"{g + ' img/scene':>26}" for g in NEGATIVE_GROUPS))
    for m, ev in ms.items():
        a = ev["alerts_operating_point"]
        label = m + (f" (T={ev['threshold_at_recall']['threshold']:g})"
                     if "threshold_at_recall" in ev else "")
        print(f"{label:<11}{100 * a['recall']:7.1f}%{a['wrong-photo']:>13}"
              + "".join(f"{str(a[g]['image']) + ' / ' + str(a[g]['scene']) + ' of ' + str(a[g]['of']):>26}"
                        for g in NEGATIVE_GROUPS))
    lw = ms["leakwatch"]["alerts_operating_point"]
    print(f"leakwatch copies reported as scene sightings instead of named: "
          f"{lw['copies-as-scene']}")
    t = r["times"]
    print(f"time: generate {t['generate']:.1f} s; leakwatch import {t['leakwatch']['import']:.1f} s "
          f"+ match {t['leakwatch']['match']:.1f} s; phash16 {t['phash16']['total']:.1f} s; "
          f"dhash16 {t['dhash16']['total']:.1f} s (imagehash {r['imagehash']}, Python, one core)")
    if r["work"]:
        print(f"work dir kept: {r['work']}")


if __name__ == "__main__":
    main()
