"""The README's first command: generates the bundled sample (espeak-ng speech with pauses under a
test-pattern video with a real face) and runs `emofactory run` on it: the whole pipeline over a
local stack, then a release with its report under .emofactory/demo/release."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dev import sample
from emofactory import cli
from emofactory.local import ROOT


def main() -> int:
    work = Path(os.environ.get("EMO_DATA_DIR", ROOT / ".emofactory" / "demo"))
    media = work / "media"
    media.mkdir(parents=True, exist_ok=True)
    video = media / "sample.mp4"
    truth = sample.sample_video(video)
    print(f"sample: {video} ({len(truth)} phrases, {truth[-1].end_s:.1f} s)")
    out = work / "release"
    config = ROOT / "deploy" / "demo.yaml"
    args = ["run", str(video), "--config", str(config), "--out", str(out), "--release-name", "demo"]
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    manifest = json.loads((out / "manifest.json").read_text())
    for clip in manifest["clips"]:
        print(
            f"  {clip['split']:10s} {clip['start_s']:6.2f}-{clip['end_s']:6.2f} s {clip['label']:10s}"
            f" {clip['confidence']:.2f}  {clip['media'].get('mp4', '')}  {clip['transcript']!r}"
            f"  from {clip['source']} (ingested {clip['ingested_at']})"
        )
    return 0 if manifest["clips"] else 1


if __name__ == "__main__":
    sys.exit(main())
