"""What the documentation rule reads from a model card: the licenses in its YAML front matter
(the Hub's model card metadata, `license:` as one id or a list)."""

from __future__ import annotations

import yaml

FRONT_MATTER = "---"


def card_licenses(text: str) -> tuple[str, ...]:
    """The license ids a README.md declares, lowercased; () when it declares none or its front
    matter is not valid YAML (the card then names no license, which the rule can act on)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != FRONT_MATTER:
        return ()
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == FRONT_MATTER)
    except StopIteration:
        return ()
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        return ()
    if not isinstance(meta, dict):
        return ()
    value = meta.get("license")
    values = value if isinstance(value, list) else [value]
    return tuple(str(v).strip().lower() for v in values if isinstance(v, str | int) and str(v))
