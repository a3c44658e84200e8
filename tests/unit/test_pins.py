"""The two deployments (pip with constraints.txt, buildout with versions.cfg) agree."""

from pathlib import Path

import configparser


ROOT = Path(__file__).resolve().parents[2]


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def buildout_versions() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "versions.cfg")
    return dict(parser["versions"])


def test_versions_cfg_has_the_same_pins_as_constraints():
    assert buildout_versions() == constraints()


def test_plone_is_pinned_to_6_2_2_and_its_layout_pin_kept():
    pins = constraints()
    assert pins["products.cmfplone"] == "6.2.2"
    assert pins["plone.app.layout"].startswith("6.")
