#!/usr/bin/env python3
"""Write a seed corpus for the fuzz targets from tests/data/frames.json.

Each vector frame becomes one file (prefixed with the slice-size byte the
frame target reads first), plus a few streams of several frames back to back.
Usage: make-corpus.py FRAMES_JSON OUT_DIR
"""
import json
import os
import sys


def main():
    vectors_path, out_dir = sys.argv[1], sys.argv[2]
    with open(vectors_path) as f:
        vectors = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    frames = []
    for group in ("valid", "invalid"):
        for v in vectors[group]:
            frame = bytes.fromhex(v["frame_hex"])
            frames.append(frame)
            with open(os.path.join(out_dir, f"{group}-{v['name']}"), "wb") as f:
                f.write(bytes([0]) + frame)
    small = [f for f in frames if len(f) < 1024]
    for step in (1, 7, 96):
        with open(os.path.join(out_dir, f"stream-step{step}"), "wb") as f:
            f.write(bytes([step - 1]) + b"".join(small))
    print(f"{len(os.listdir(out_dir))} seeds in {out_dir}")


if __name__ == "__main__":
    main()
