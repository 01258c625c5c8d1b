"""DeepDream: the engine against an independent reference, its objective, tiling, animation, CLI."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cvtools.dream import (
    DEFAULT_STEP_SIZE,
    DreamEngine,
    DreamSettings,
    dream,
    octave_sizes,
    parse_layer_target,
    roll2d,
    roll_indices,
    tile_spans,
    tiled_gradient,
    zoom,
)
from cvtools.errors import CvtoolsError, UsageError
from cvtools.io.decode import load_image

FAST = dict(octaves=2, steps=3)  # small dreams: the CPU tests stay quick


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These images are tiny: one thread does them as fast as two, and stays fast when the
    machine's cores are shared (two spinning OpenMP threads on busy cores were measured 75x
    slower per step). Restored for the modules that follow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sample(name="chelsea", size=96):
    """A sample photo resized so its longer side is ``size``: 3×H×W in [0, 1]."""
    im = load_image(SAMPLES / f"{name}.jpg").rgb
    w, h = im.size
    f = size / max(w, h)
    return torch.from_numpy(
        __import__("numpy").asarray(im.resize((round(w * f), round(h * f)), Image.LANCZOS)).copy()
    ).permute(2, 0, 1).float() / 255


def layer_norm(bb, x, layer):
    with torch.no_grad():
        return bb.features(x, [layer])[layer].float().pow(2).mean().item()


# ----------------------------------------------------------------------------- pieces


def test_layer_targets_parse_channels_and_reject_garbage():
    assert parse_layer_target("blocks.10").channels is None
    assert parse_layer_target("blocks.10:3,7").channels == (3, 7)
    assert parse_layer_target("blocks.10:0-3,9").channels == (0, 1, 2, 3, 9)
    assert str(parse_layer_target("blocks.10:2-4")) == "blocks.10:2-4"
    assert parse_layer_target(str(parse_layer_target("blocks.10:9,2-4,7"))) == parse_layer_target("blocks.10:9,2-4,7")
    for bad in ("blocks.10:x", "blocks.10:5-2", ":3", "blocks.10:-1"):
        with pytest.raises(UsageError):
            parse_layer_target(bad)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), sy=st.integers(-100, 100), sx=st.integers(-100, 100))
def test_roll_matches_torch_roll_and_unroll_is_identity(h, w, sy, sx):
    x = torch.randn(1, 3, h, w)
    rows, rows_inv = roll_indices(h, torch.tensor([sy]))
    cols, cols_inv = roll_indices(w, torch.tensor([sx]))
    rolled = roll2d(x, rows[0], cols[0])
    assert torch.equal(rolled, torch.roll(x, (sy, sx), (2, 3)))
    assert torch.equal(roll2d(rolled, rows_inv[0], cols_inv[0]), x)


def test_octaves_adapt_so_the_smallest_fits_the_backbone():
    assert octave_sizes(300, 400, 4, 1.4, 32) == [(109, 146), (153, 204), (214, 286), (300, 400)]
    sizes = octave_sizes(60, 90, 4, 1.4, 32)
    assert sizes[-1] == (60, 90) and min(sizes[0]) >= 32 and len(sizes) == 2


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 700), tile=st.integers(128, 300), offset=st.integers(0, 299), margin=st.integers(0, 64))
def test_tile_spans_partition_the_axis(n, tile, offset, margin):
    spans = tile_spans(n, tile, offset, margin)
    assert spans[0][0] == 0 and spans[-1][1] == n
    for (a, b, ca, cb), nxt in zip(spans, spans[1:] + [None]):
        assert a < b and ca == max(0, a - margin) and cb == min(n, b + margin)
        assert b - a <= tile + 2 * max(0, margin - 1)  # bounded by the tile (plus merged slivers)
        if nxt:
            assert nxt[0] == b
    if n <= tile:
        assert spans == [(0, n, 0, n)]


def test_gaussian_gradient_smoothing_matches_torchvision():
    from torchvision.transforms.functional import gaussian_blur

    from cvtools.ops import GaussianBlur

    x = torch.randn(1, 3, 40, 50)
    ours = GaussianBlur(1.3, torch.device("cpu"))(x)
    ref = gaussian_blur(x, kernel_size=2 * math.ceil(3 * 1.3) + 1, sigma=1.3)
    assert torch.allclose(ours, ref, atol=1e-5)


# ----------------------------------------------------------------------------- the engine


def reference_dream(bb, image, layers, octaves, scale, steps, step_size, jitter, smooth, seed):
    """The algorithm written plainly: torch.roll with Python shifts, whole-image gradients,
    torchvision's blur; the random draws in the engine's order."""
    from torchvision.transforms.functional import gaussian_blur

    info = {i.name: i for i in bb.layers}
    gen = torch.Generator().manual_seed(seed)
    h, w = image.shape[-2:]
    sizes = [(round(h * scale ** -k), round(w * scale ** -k)) for k in range(octaves - 1, -1, -1)]
    shifts = [torch.randint(-jitter, jitter + 1, (steps, 2), generator=gen) for _ in sizes]
    x0 = image.unsqueeze(0)
    bases = [F.interpolate(x0, size=s, mode="bilinear", align_corners=False, antialias=s != (h, w)) for s in sizes]
    img = bases[0].clone()
    for k, size in enumerate(sizes):
        if k:
            img = (bases[k] + F.interpolate(img - bases[k - 1], size=size, mode="bilinear", align_corners=False)).clamp(0, 1)
        for sy, sx in shifts[k].tolist():
            x = torch.roll(img, (sy, sx), (2, 3)).requires_grad_(True)
            feats = bb.features(x, layers)
            loss = sum(feats[n].pow(2).sum() * info[n].stride ** 2 / info[n].channels for n in layers)
            (g,) = torch.autograd.grad(loss, x)
            g = torch.roll(g, (-sy, -sx), (2, 3))
            g = gaussian_blur(g, kernel_size=2 * math.ceil(3 * smooth) + 1, sigma=smooth)
            img = (img + g * (step_size / g.abs().mean())).clamp(0, 1).detach()
    return img[0]


def test_engine_equals_the_plain_reference_algorithm(lite0):
    x = sample(size=80)
    layers = ["blocks.6", "blocks.8"]
    kw = dict(octaves=2, octave_scale=1.4, steps=3, step_size=0.02, jitter=16, smooth=1.0)
    ours = dream(x, lite0, layers, seed=3, fast=False, tile=None, **kw)
    ref = reference_dream(lite0, x, layers, kw["octaves"], kw["octave_scale"], kw["steps"], kw["step_size"],
                          kw["jitter"], kw["smooth"], seed=3)
    assert (ours - ref).abs().max() < 1e-4
    assert (ours - x).abs().mean() > 0.005  # and it did dream


def test_step_is_graph_capturable(lite0):
    """What a CUDA graph needs, checked on the CPU: no host syncs (.item(), nonzero), no tensors
    made from Python data inside the step, and the same kernels whatever the image and the
    shifts (no data-dependent branches), for plain and guided objectives."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    forbidden = {"aten._local_scalar_dense", "aten.lift_fresh", "aten.nonzero", "aten.is_nonzero", "aten.equal"}
    for guide in (None, sample("rocket", 64)):
        engine = DreamEngine(lite0, DreamSettings(layers=("blocks.8:0-9", "blocks.10")), guide=guide)
        runs = []
        for seed in (0, 1):
            g = torch.Generator().manual_seed(seed)
            image = torch.rand(1, 3, 48, 64, generator=g)
            rows, rows_inv = roll_indices(48, torch.randint(-9, 10, (1,), generator=g))
            cols, cols_inv = roll_indices(64, torch.randint(-9, 10, (1,), generator=g))
            with Record() as rec:
                engine.step(image, rows[0], cols[0], rows_inv[0], cols_inv[0])
            runs.append(rec.ops)
        assert not forbidden & set(runs[0]), forbidden & set(runs[0])
        assert runs[0] == runs[1] and len(runs[0]) > 50


@pytest.mark.slow
def test_compiled_objective_gives_the_eager_gradient(lite0):
    # --compile runs the whole forward under torch.compile (no early stop), guided too
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(4))
    for guide in (None, sample("rocket", 64)):
        eager = DreamEngine(lite0, DreamSettings(layers=("blocks.4", "blocks.6:0-9")), guide=guide)
        compiled = DreamEngine(lite0, DreamSettings(layers=("blocks.4", "blocks.6:0-9"), compile=True), guide=guide)
        g_eager, g_compiled = eager.gradient(x), compiled.gradient(x)
        assert float((g_eager - g_compiled).abs().max()) <= 1e-4 * float(g_eager.abs().max())
    # and a whole step: the compiled update blurs with a stencil instead of a convolution
    rows, rows_inv = roll_indices(48, torch.tensor([5]))
    cols, cols_inv = roll_indices(64, torch.tensor([-7]))
    a, b = x.clone(), x.clone()
    eager.step(a, rows[0], cols[0], rows_inv[0], cols_inv[0])
    compiled.step(b, rows[0], cols[0], rows_inv[0], cols_inv[0])
    assert float((a - x).abs().mean()) > 1e-3  # it moved
    assert float((a - b).abs().max()) < 1e-4


def test_stencil_blur_is_the_convolution_blur():
    from cvtools.ops import GaussianBlur

    x = torch.randn(2, 3, 37, 53)
    for sigma in (0.5, 1.0, 2.0):
        blur = GaussianBlur(sigma, "cpu")
        assert float((blur(x) - blur.stencil(x)).abs().max()) < 1e-5


def test_captured_octave_path_equals_the_eager_path(lite0):
    """The CUDA-graph path's plumbing (static buffers refilled per replay, one capture per octave
    shape, reused across images) with a CPU stand-in that replays by re-running the steps."""
    from cvtools.dream.graphs import EagerReplay

    settings = DreamSettings(octaves=2, steps=3, tile=None)
    fast = DreamEngine(lite0, settings)
    fast.use_graphs, fast.graph_backend = True, EagerReplay()
    plain = DreamEngine(lite0, replace(settings, fast=False))
    a, b = sample("chelsea", 80), sample("coffee", 80)  # both 80×53: 2 octaves
    captures = []
    for image, seed in [(a, 0), (b, 4), (a, 0)]:
        assert torch.equal(fast(image, seed=seed), plain(image, seed=seed))
        captures.append(len(fast._graphs))
    # the first image's shapes run eagerly (a one-off size never pays for a capture); the second
    # same-size image captures one graph per octave shape; the third replays them
    assert captures == [0, 2, 2]


def test_one_off_shapes_are_not_captured(lite0):
    """A folder of photos in many sizes never repeats a shape, so it never pays for a capture."""
    from cvtools.dream.graphs import EagerReplay

    fast = DreamEngine(lite0, DreamSettings(octaves=2, steps=2, tile=None))
    fast.use_graphs, fast.graph_backend = True, EagerReplay()
    for size in (64, 72, 80):
        fast(torch.rand(3, size, size + 8))
    assert len(fast._graphs) == 0


def test_output_has_the_input_shape_even_below_the_backbone_minimum(lite0):
    for shape in [(3, 45, 67), (3, 12, 20)]:
        x = torch.rand(shape)
        notes = []
        out = dream(x, lite0, octaves=2, steps=1, on_note=notes.append)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert any("smaller than the 32-px minimum" in n for n in notes)
    batch = torch.rand(1, 3, 40, 40)
    assert dream(batch, lite0, octaves=1, steps=1).shape == batch.shape


def test_octave_note_names_the_inputs_own_size(lite0):
    """QA: a 1x1 PNG was told '32x32 is too small for 4 octaves', a size it never had."""
    notes = []
    dream(torch.rand(3, 1, 1), lite0, octaves=4, steps=1, on_note=notes.append)
    octave = [n for n in notes if "too small for 4 octaves" in n]
    assert len(octave) == 1 and octave[0].startswith("1x1 (scaled up to 32x32) is too small"), notes
    notes.clear()
    dream(torch.rand(3, 40, 48), lite0, octaves=4, steps=1, on_note=notes.append)  # not scaled: as before
    assert any(n.startswith("48x40 is too small for 4 octaves") for n in notes), notes


def test_activation_norm_of_the_chosen_layer_rises_over_the_steps(lite0):
    x = sample(size=96).unsqueeze(0)
    norms = [layer_norm(lite0, x, "blocks.10")]
    for _ in range(3):  # 3 steps at a time, each dream continuing the last
        x = dream(x, lite0, "blocks.10", octaves=1, steps=3)
        norms.append(layer_norm(lite0, x, "blocks.10"))
    assert all(b > a for a, b in zip(norms, norms[1:])), norms
    assert norms[-1] > 1.25 * norms[0], norms


def test_channel_targets_grow_those_channels_more_than_others(lite0):
    x = sample(size=96).unsqueeze(0)
    chosen = list(range(8))
    out = dream(x, lite0, "blocks.8:0-7", octaves=1, steps=8)
    with torch.no_grad():
        before = lite0.features(x, ["blocks.8"])["blocks.8"].pow(2).mean(dim=(0, 2, 3))
        after = lite0.features(out, ["blocks.8"])["blocks.8"].pow(2).mean(dim=(0, 2, 3))
    gain = after / before
    assert gain[chosen].mean() > 1.4 * gain[8:].mean(), gain


def test_guided_dream_moves_features_towards_the_guide(lite0):
    layer = "blocks.10"
    x = sample("chelsea", 96).unsqueeze(0)
    guide = sample("rocket", 96).unsqueeze(0)

    def similarity(img):
        with torch.no_grad():
            a = lite0.features(img, [layer])[layer].mean(dim=(2, 3))
            b = lite0.features(guide, [layer])[layer].mean(dim=(2, 3))
        return F.cosine_similarity(a, b).item()

    # One guided dream is a sample of a chaotic process: each position follows the guide vector
    # it matches best (an argmax), and a last-bit difference in a dot product (another thread
    # count, another CPU's kernels: measured gains 0.024 with 1 thread and 0.085 with 2 for the
    # same seed) picks another vector and another path. The property holds on average over
    # seeds, and for the objective the guided dream climbs.
    from cvtools.dream.objective import DreamObjective, resolve_layer_targets

    objective = DreamObjective(lite0, resolve_layer_targets(lite0, layer), guide=guide)

    def guided_objective(img):
        with torch.no_grad():
            return objective(lite0.features(img, objective.layers)).item()

    gains = {"guided": [], "plain": []}
    climbs = {"guided": [], "plain": []}
    base, base_objective = similarity(x), guided_objective(x)
    for seed in (1, 2, 3):
        kw = dict(octaves=2, steps=6, seed=seed)
        for kind, out in (("guided", dream(x, lite0, layer, guide=guide, **kw)), ("plain", dream(x, lite0, layer, **kw))):
            gains[kind].append(similarity(out) - base)
            climbs[kind].append(guided_objective(out) / base_objective)
    mean = lambda v: sum(v) / len(v)
    # the guide's features grow: the mean feature vector turns towards the guide's, and more than a
    # plain dream turns it. No tuned margin (it was +0.03, against one machine's gains): a plain
    # dream has no reason to turn towards the guide, so its mean gain is noise around 0 by
    # construction, and the bound is that noise itself: the guided mean must beat the plain mean
    # by more than the plain dream's largest single-seed excursion. Measured (2 threads): guided
    # 0.024/0.109/0.078 (mean 0.070), plain 0.016/-0.009/-0.030 (mean -0.008, largest |0.030|):
    # a gap of 0.078 against 0.030.
    noise = max(abs(g) for g in gains["plain"])
    assert mean(gains["guided"]) - mean(gains["plain"]) > noise, gains
    # gradient ascent on the guided objective raises it more than a plain dream does, every seed
    assert all(g > p for g, p in zip(climbs["guided"], climbs["plain"])), climbs


def test_seed_makes_it_deterministic(lite0):
    x = sample(size=64)
    a = dream(x, lite0, seed=5, **FAST)
    assert torch.equal(a, dream(x, lite0, seed=5, **FAST))
    assert not torch.equal(a, dream(x, lite0, seed=6, **FAST))


def test_tiled_equals_untiled_when_the_image_fits_one_tile(lite0):
    x = sample(size=96)
    assert torch.equal(dream(x, lite0, tile=128, seed=2, **FAST), dream(x, lite0, tile=None, seed=2, **FAST))


def test_tiled_gradient_matches_the_whole_image_gradient(lite0):
    x = sample("rocket", 256)[:, :128].unsqueeze(0)  # 128×256: two tiles side by side
    engine = DreamEngine(lite0, DreamSettings(layers=("blocks.10",)))  # stride 16
    whole = engine.gradient(x)

    def error(margin, align):  # 1 - cosine similarity with the whole-image gradient
        tiled = tiled_gradient(x, engine.gradient, 128, (0, 101), margin=margin, align=align)
        return 1 - F.cosine_similarity(tiled.flatten(), whole.flatten(), dim=0).item()

    designed = error(margin=64, align=16)
    assert designed < 0.01
    # Both halves of the design matter: context around each tile, and tiles on the stride grid.
    # The controls are compared with the design's own error, not with a fixed cosine (they were
    # 0.85 against a 0.9 bound). Why the gap is large by construction: with a 64 px margin the
    # tiled gradient differs from the whole one only through the receptive field's tail beyond
    # 64 px, which is small; without a margin every pixel within a receptive field of the seam
    # (a good part of a 128 px tile at stride 16) sees padding instead of the image; off the
    # stride grid (align=1) every tile's stride-16 sampling lattice is shifted against the whole
    # image's, so every output position of the tile samples other pixels, not only the seam's.
    # Measured on a 2-core CPU: 0.0048 designed, 0.15 without margin (32x), 0.49 off the grid
    # (100x); the 10x bound leaves a factor of 3 on each side.
    assert error(margin=0, align=16) > 10 * designed
    assert error(margin=64, align=1) > 10 * designed


def _tf_same_net():
    """Three stride-2 TF-"same" convolutions (EfficientNet-Lite's padding: the top/left pad
    follows each input's parity), float64. Total stride 8; the receptive field of an output
    is 3 + 4*2 + 2*4 = 19 px, so an input pixel's gradient depends on pixels within 2*19 px."""
    from cvtools.backbones.efficientnet_lite import Conv2dSame

    torch.manual_seed(0)
    net = torch.nn.Sequential(Conv2dSame(3, 4, 3, 2, bias=True), torch.nn.ReLU(), Conv2dSame(4, 4, 5, 2, bias=True),
                              torch.nn.ReLU(), Conv2dSame(4, 4, 3, 2, bias=True)).double()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _net_gradient(net):
    def gradient(x):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(net(x).pow(2).sum(), x)
        return g

    return gradient


@settings(max_examples=40, deadline=None)
@given(h=st.integers(9, 90), w=st.integers(9, 90), tile=st.integers(8, 48), oy=st.integers(0, 47),
       ox=st.integers(0, 47))
def test_tiles_see_the_stride_grid_of_the_whole_image_at_any_size(h, w, tile, oy, ox):
    """With a margin that covers the gradient's reach, the tiled gradient IS the whole one, for
    sizes that are and are not multiples of the stride: each tile starts on the stride grid and
    its length is congruent to the image's (mod stride), so every TF-"same" layer pads it on the
    same side as the whole image. float64: the only differences are reduction order (~1e-16
    relative per add over a few hundred terms), so 1e-9 of the gradient's scale is generous;
    a tile on a shifted grid is off by the gradient's own size."""
    net = _tf_same_net()
    gradient = _net_gradient(net)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * 100 + w), dtype=torch.float64)
    whole = gradient(x)
    tiled = tiled_gradient(x, gradient, tile, (oy, ox), margin=40, align=8)
    assert (tiled - whole).abs().max() <= 1e-9 * whole.abs().max()


def test_tiled_gradient_matches_at_sizes_that_are_not_multiples_of_the_stride(lite0):
    """Issue 20's case: 342x512, default layers (stride 32), 192-px tiles, the default margin.
    Measured 0.64 before the tiles' lengths kept the image's parity, 0.9987 after."""
    x = F.interpolate(sample("rocket", 512).unsqueeze(0), size=(342, 512), mode="bilinear", align_corners=False)
    engine = DreamEngine(lite0, DreamSettings())
    whole = engine.gradient(x)
    tiled = tiled_gradient(x, engine.gradient, 192, (37, 91), engine.settings.margin, engine._align)
    assert F.cosine_similarity(tiled.flatten(), whole.flatten(), dim=0).item() >= 0.995


def test_tiled_dream_has_no_seams(lite0):
    """Tiles whose borders stayed put would leave a line; random offsets must not."""
    x = sample("rocket", 240)[:, :128, :]  # 128×240: two tiles side by side
    out = dream(x, lite0, tile=128, octaves=1, steps=4, seed=0)
    col = (out - x).abs().mean(dim=(0, 1))
    assert col[126:130].mean() < 1.5 * col[96:160].mean()  # no column stands out (a fixed seam would)
    # One step matches the untiled step closely. (Further steps are compared in statistics only:
    # a dream is chaotic in its pixels, a 1e-4 change of the input moves step 2 by ~0.008.)
    one_tiled = dream(x, lite0, tile=128, octaves=1, steps=1, seed=0)
    one_whole = dream(x, lite0, tile=None, octaves=1, steps=1, seed=0)
    assert (one_tiled - one_whole).abs().mean() < 0.05 * (one_whole - x).abs().mean()


def test_out_of_memory_falls_back_to_tiles_and_says_so(lite0):
    """A device that cannot hold the whole image: the octave is retried in tiles, the result
    is still a full dream, and the user is told."""
    notes = []
    engine = DreamEngine(lite0, DreamSettings(octaves=1, steps=2, tile=None), on_note=notes.append)
    whole_gradient = engine.gradient
    sizes = []

    def small_memory(crop):
        sizes.append(tuple(crop.shape[-2:]))
        if crop.shape[-2] * crop.shape[-1] >= 171 * 256:  # the whole image does not fit
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return whole_gradient(crop)

    engine.gradient = small_memory
    x = sample("rocket", 256)  # 171×256
    out = engine(x, seed=0)
    assert out.shape == x.shape and (out - x).abs().mean() > 0.005
    assert any("out of memory at 256x171; retrying with 128-px tiles" in n for n in notes), notes
    assert len(sizes) > 3 and max(h * w for h, w in sizes[1:]) < 171 * 256  # then tiles, which fit

    engine = DreamEngine(lite0, DreamSettings(octaves=1, steps=1, tile=None))
    engine.gradient = lambda crop: (_ for _ in ()).throw(MemoryError())
    with pytest.raises(CvtoolsError, match="even with 128-px tiles"):
        engine(x)


def test_bad_layer_and_channel_are_usage_errors(lite0):
    with pytest.raises(UsageError, match="valid layers: .*blocks.10"):
        DreamEngine(lite0, DreamSettings(layers=("nosuch",)))
    with pytest.raises(UsageError, match="has 112 channels"):
        DreamEngine(lite0, DreamSettings(layers=("blocks.10:200",)))


def test_zoom_keeps_size_and_centre():
    x = torch.zeros(1, 1, 41, 41)
    x[..., 20, 20] = 1
    z = zoom(x, 1.5)
    assert z.shape == x.shape and z[0, 0].flatten().argmax().item() == 20 * 41 + 20
    assert torch.allclose(zoom(x, 1.0), x, atol=1e-6)


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def small_jpg(tmp_path):
    p = tmp_path / "cat.jpg"
    Image.open(SAMPLES / "chelsea.jpg").resize((72, 48)).save(p)
    return p


def test_cli_writes_next_to_the_input_and_keeps_size(run_cli, small_jpg):
    r = run_cli("dream", small_jpg, "--octaves", 2, "--steps", 2, "--seed", 1)
    assert r.exit_code == 0, r.output
    out = small_jpg.with_name("cat_dream.jpg")
    assert Image.open(out).size == (72, 48)
    assert f"{small_jpg} -> {out}" in r.stdout
    # same seed, same bytes (refusing to replace without --overwrite: tests/test_reliability.py)
    first = out.read_bytes()
    r = run_cli("dream", small_jpg, "--octaves", 2, "--steps", 2, "--seed", 1, "--overwrite")
    assert r.exit_code == 0 and out.read_bytes() == first


def test_cli_keeps_alpha(run_cli, tmp_path):
    rgba = Image.open(SAMPLES / "coffee.jpg").resize((60, 40)).convert("RGBA")
    alpha = Image.linear_gradient("L").resize((60, 40))
    rgba.putalpha(alpha)
    src = tmp_path / "cup.png"
    rgba.save(src)
    r = run_cli("dream", src, "--octaves", 1, "--steps", 2, "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGBA" and out.getchannel("A").tobytes() == alpha.tobytes()


def test_cli_invalid_layer_lists_valid_names(run_cli, small_jpg):
    r = run_cli("dream", small_jpg, "--layer", "blocks.99")
    assert r.exit_code != 0
    assert "unknown layer 'blocks.99'" in r.stderr and "did you mean 'blocks.9'" in r.stderr
    r = run_cli("dream", small_jpg, "--layer", "nosuch")
    assert r.exit_code != 0 and "valid layers: stem, blocks.0" in r.stderr and "head" in r.stderr
    assert "Traceback" not in r.output and r.stderr.strip().count("\n") == 0
    r = run_cli("dream", small_jpg, "--layer", "blocks.10:1-x")
    assert r.exit_code != 0 and "channels must be numbers" in r.stderr
    r = run_cli("dream", small_jpg, "--guide", small_jpg.with_name("nope.jpg"))
    assert r.exit_code == 1 and "nope.jpg: no such file" in r.stderr
    r = run_cli("dream", small_jpg, "-o", small_jpg.with_name("still.gif"))
    assert r.exit_code != 0 and "needs --frames" in r.stderr
    assert not small_jpg.with_name("cat_dream.jpg").exists()


def test_cli_batch_goes_on_past_a_bad_file(run_cli, tmp_path, small_jpg):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    r = run_cli("dream", bad, small_jpg, "--octaves", 1, "--steps", 1, "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert (tmp_path / "out" / "cat_dream.jpg").exists()
    assert not list((tmp_path / "out").glob("broken*"))
    assert "broken.jpg" in r.stderr


def test_cli_animation_gif_and_png_sequence(run_cli, small_jpg, tmp_path):
    opts = ["--octaves", 1, "--steps", 1, "--frames", 3, "--zoom", 1.1]
    r = run_cli("dream", small_jpg, *opts, "-o", tmp_path / "zoom.gif")
    assert r.exit_code == 0, r.output
    gif = Image.open(tmp_path / "zoom.gif")
    assert gif.n_frames == 3 and gif.size == (72, 48)
    r = run_cli("dream", small_jpg, *opts, "-o", tmp_path / "frames")
    assert r.exit_code == 0, r.output
    frames = sorted((tmp_path / "frames").glob("*.png"))
    assert [f.name for f in frames] == [f"cat_dream_{k:04d}.png" for k in range(3)]
    # the PNG sequence holds the same pictures as the GIF (GIF palettes cost a little accuracy)
    import numpy as np

    gif.seek(2)
    a = np.asarray(gif.convert("RGB"), dtype=float)
    b = np.asarray(Image.open(frames[2]).convert("RGB"), dtype=float)
    assert np.abs(a - b).mean() < 6


def test_cli_help_teaches(run_cli):
    r = run_cli("dream", "--help")
    assert r.exit_code == 0
    assert "Examples" in r.output and "--guide" in r.output and "--frames" in r.output
    assert f"{DEFAULT_STEP_SIZE:g}" in r.output


def test_bad_channel_range_is_named_as_a_range(lite0):
    """A mistyped range names the range and the layer's channel count, not every number."""
    from cvtools.dream.objective import compact_channels, resolve_layer_targets

    assert compact_channels([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10"
    with pytest.raises(UsageError) as err:
        resolve_layer_targets(lite0, "blocks.10:200-300")
    msg = str(err.value)
    assert "200-300" in msg and "112 channels" in msg and "250" not in msg and "\n" not in msg


def test_cli_enlarge_is_held_to_the_pixel_limit(run_cli, small_jpg, tmp_path):
    """--enlarge past --max-pixels is refused in one line before the dream (it was OOM-killed)."""
    r = run_cli("dream", small_jpg, "--octaves", 1, "--steps", 1, "--size", 100000, "--enlarge",
                "-o", tmp_path / "big.png")
    assert r.exit_code == 1 and "--size 100000 would make cat.jpg 100000x66667" in r.stderr
    assert "over the 100 megapixel limit; pass --max-pixels" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and not (tmp_path / "big.png").exists()
    r = run_cli("dream", small_jpg, "--octaves", 1, "--steps", 1, "--size", 96, "--enlarge",
                "--max-pixels", 5000, "-o", tmp_path / "big.png")
    assert r.exit_code == 1 and "96x64" in r.stderr


def test_cli_animation_to_a_video_or_image_name(run_cli, small_jpg, tmp_path):
    """-o anim.mp4 / anim.jpg with --frames was made a folder of PNG frames under that name: a
    video name is now a video (transparency laid on white), an image name a one-line refusal."""
    import av

    r = run_cli("dream", small_jpg, "--octaves", 1, "--steps", 1, "--frames", 3, "-o", tmp_path / "anim.jpg")
    assert r.exit_code == 1 and "written as .gif, .webp, .mp4" in r.stderr, r.output
    assert not (tmp_path / "anim.jpg").exists()
    rgba = Image.open(small_jpg).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(tmp_path / "cat.png")
    r = run_cli("dream", tmp_path / "cat.png", "--octaves", 1, "--steps", 1, "--frames", 3, "-o", tmp_path / "a.mp4")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.mp4").is_file()
    with av.open(str(tmp_path / "a.mp4")) as c:
        frames = list(c.decode(video=0))
        assert len(frames) == 3 and (frames[0].width, frames[0].height) == (72, 48)
        assert "cvtools:" in c.metadata.get("comment", "")


def test_cli_output_never_replaces_the_guide(run_cli, small_jpg, tmp_path):
    """-o GUIDE --overwrite replaced the --guide image; it is protected as an input is."""
    guide = tmp_path / "cup.jpg"
    Image.open(SAMPLES / "coffee.jpg").resize((40, 30)).save(guide)
    before = guide.read_bytes()
    r = run_cli("dream", small_jpg, "--guide", guide, "-o", guide, "--overwrite", "--octaves", 1, "--steps", 1)
    assert r.exit_code == 1 and "would overwrite an input" in r.stderr, r.output
    assert guide.read_bytes() == before


def test_cli_notes_options_that_do_nothing_and_checks_start_first(run_cli, small_jpg, tmp_path):
    """--zoom/--fps without --frames, --frames on a video: a note; --start past a clip's end is
    refused before the output is named ("writing clip_dream.mp4" came before the error)."""
    from test_video_io import make_clip

    r = run_cli("dream", small_jpg, "--zoom", 1.2, "--octaves", 1, "--steps", 1, "-o", tmp_path / "one.jpg")
    assert r.exit_code == 0 and "--zoom only shapes a --frames N animation" in r.stderr, r.output
    clip = make_clip(tmp_path / "clip.mp4", audio=None)
    r = run_cli("dream", clip, "--frames", 3, "--start", 100)
    assert r.exit_code == 1 and "--frames does nothing for it" in r.stderr, r.output
    assert "past the end" in r.stderr and "writing" not in r.stderr
    assert not list(tmp_path.glob("clip_dream*"))


def test_cli_enlarged_video_is_held_to_the_pixel_limit(run_cli, tmp_path):
    """A video's frames --enlarge'd past --max-pixels: one line before any work, as a photo."""
    from test_video_io import make_clip

    clip = make_clip(tmp_path / "clip.mp4", audio=None)
    r = run_cli("dream", clip, "--size", 100000, "--enlarge", "--octaves", 1, "--steps", 1)
    assert r.exit_code == 1 and "--size 100000 would make clip.mp4" in r.stderr, r.output
    assert "pass --max-pixels" in r.stderr and not list(tmp_path.glob("clip_dream*"))
