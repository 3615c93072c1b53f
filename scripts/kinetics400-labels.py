#!/usr/bin/env python3
"""Writes assets/labels/kinetics400.txt: the 400 Kinetics-400 class names, one per line, in the
class-index order every published Kinetics-400 checkpoint uses (the names sorted alphabetically).

The list is read, not typed: it comes from torchvision's `_KINETICS400_CATEGORIES`
(torchvision/models/_meta.py), fetched as the torchvision wheel from PyPI (no other network).
Usage: python3 scripts/kinetics400-labels.py [--wheel TORCHVISION.whl] [--out FILE]
"""
import argparse
import ast
import glob
import os
import subprocess
import sys
import tempfile
import zipfile

TORCHVISION = "torchvision==0.29.2"


def fetch_wheel(tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--dest", tmp, TORCHVISION], check=True)
    wheels = glob.glob(os.path.join(tmp, "torchvision-*.whl"))
    if not wheels:
        sys.exit(f"kinetics400-labels: pip gave no torchvision wheel in {tmp}")
    return wheels[0]


def categories(wheel):
    with zipfile.ZipFile(wheel) as z:
        source = z.read("torchvision/models/_meta.py").decode()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_KINETICS400_CATEGORIES":
            return ast.literal_eval(node.value)
    sys.exit(f"kinetics400-labels: {wheel} has no _KINETICS400_CATEGORIES")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", help="a torchvision wheel already on disk")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "assets", "labels",
                                                  "kinetics400.txt"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        names = categories(args.wheel or fetch_wheel(tmp))
    if len(names) != 400 or len(set(names)) != 400 or names != sorted(names):
        sys.exit(f"kinetics400-labels: expected 400 distinct names in sorted order, got {len(names)}")
    out = os.path.abspath(args.out)
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(out), prefix=".kinetics400-")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(names) + "\n")
    os.chmod(tmp_path, 0o644)
    os.replace(tmp_path, out)
    print(f"wrote {len(names)} labels to {out}")


if __name__ == "__main__":
    main()
