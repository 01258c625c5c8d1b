"""dream.animation.write_dream_animation: the animation writing the CLI used to do itself."""

import pytest
import torch
from PIL import Image

from cvtools.dream.animation import write_dream_animation


def darker(image, seed=0, progress=None):
    """A stand-in engine: each "dream" halves the image (frames differ, no network needed)."""
    return image * 0.5


def test_writes_one_animated_file(tmp_path):
    x = torch.full((3, 16, 24), 0.8)
    alpha = torch.ones(1, 16, 24)
    alpha[..., :8] = 0  # a transparent left third
    (path,) = write_dream_animation(darker, x, 3, tmp_path / "a.webp", zoom_factor=1.1, alpha=alpha, fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.size == (24, 16) and im.mode == "RGBA"  # WebP keeps alpha
        for k in range(3):
            im.seek(k)
            rgba = im.convert("RGBA")
            assert rgba.getpixel((1, 8))[3] == 0 and rgba.getpixel((20, 8))[3] == 255  # zoomed alike
    (path,) = write_dream_animation(darker, x, 3, tmp_path / "a.gif", alpha=alpha)
    with Image.open(path) as im:
        assert im.n_frames == 3
        values = []
        for k in range(3):
            im.seek(k)
            values.append(im.convert("RGB").getpixel((12, 8)))
    # 0.8 halved once per frame; one flat colour per frame fits a GIF palette exactly
    assert values == [(102, 102, 102), (51, 51, 51), (26, 26, 26)]


def test_writes_each_frame_to_its_path(tmp_path):
    x = torch.full((3, 8, 8), 0.8)
    targets = [tmp_path / f"f{k}.png" for k in range(2)]
    assert write_dream_animation(darker, x, 2, targets) == targets
    assert [Image.open(t).getpixel((4, 4)) for t in targets] == [(102, 102, 102), (51, 51, 51)]
    with pytest.raises(ValueError, match="3 frame paths for 2 frames"):
        write_dream_animation(darker, x, 2, targets + [tmp_path / "extra.png"])


def test_a_transparent_webp_keeps_its_alpha_when_its_edge_is_transparent(tmp_path):
    """Pillow 13's lossy animated WebP crops a transparent edge away and then reads back opaque
    (cvtools.io.webp): three frames with a still transparent right half keep it, and stay lossy."""
    import numpy as np

    from cvtools.dream.animation import save_animation

    rng = np.random.default_rng(0)
    alpha = np.full((64, 96), 255, np.uint8)
    alpha[:, 48:] = 0
    frames = []
    for _ in range(3):
        im = Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), "RGB")
        im.putalpha(Image.fromarray(alpha, "L"))
        frames.append(im)
    path = save_animation(tmp_path / "a.webp", frames, fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.mode == "RGBA"
        for k in range(3):
            im.seek(k)
            got = np.asarray(im.convert("RGBA").getchannel("A"), dtype=int)
            assert np.abs(got - alpha).max() <= 40, k
    frames[0].save(tmp_path / "lossless.webp", save_all=True, append_images=frames[1:], lossless=True)
    assert path.stat().st_size * 2 < (tmp_path / "lossless.webp").stat().st_size
