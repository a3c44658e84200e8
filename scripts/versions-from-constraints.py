"""Write versions.cfg (buildout) from constraints.txt: both deployments, one pin set."""

from pathlib import Path

import sys


ROOT = Path(__file__).resolve().parent.parent


def versions_cfg(constraints: str) -> str:
    lines = [
        "# Generated from constraints.txt by scripts/versions-from-constraints.py;",
        "# do not edit by hand (tests/unit/test_pins.py checks they agree).",
        "[versions]",
    ]
    for line in constraints.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lines.append(f"{name} = {version}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = versions_cfg((ROOT / "constraints.txt").read_text())
    (ROOT / "versions.cfg").write_text(text)
    sys.stdout.write(f"versions.cfg: {text.count(' = ')} pins\n")
