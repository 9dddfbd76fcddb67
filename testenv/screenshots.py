"""The UI e2e tests' screenshots, kept small enough for docs/screenshots/: Chromium's PNGs
reduced to a 64-colour palette (a UI of flat colours loses nothing visible; about a third of
the size)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

COLOURS = 64


def shrink_png(path: Path) -> int:
    """Rewrites ``path`` as a palette PNG; returns its new size in bytes."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    palette = rgb.quantize(
        colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    palette.save(path, format="PNG", optimize=True)
    return path.stat().st_size


def shrink_all(paths: list[Path]) -> dict[str, int]:
    """Shrinks every screenshot that exists; their sizes by file name."""
    return {p.name: shrink_png(p) for p in paths if p.exists()}
