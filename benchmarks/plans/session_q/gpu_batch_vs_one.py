"""Session q: on a GPU, the any-painting network's batch path against its one-photo path, fp16, at strength 1 and
0.5 (the photos' own styles encoded in one batched pass) and with colour keeping: 8-bit differences per picture.
Run from the project root after `source .device/setup.sh`."""
import torch

from cvtools.style.painting import NetworkPaintingStylizer

st = NetworkPaintingStylizer([".device/shared/styles/monet_grand_canal.jpg"], device="cuda")
g = torch.Generator().manual_seed(0)
base = torch.nn.functional.interpolate(torch.rand(6, 3, 12, 20, generator=g), size=(540, 960), mode="bicubic")
pixels = [(b.clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() for b in base]
print(torch.__version__, torch.cuda.get_device_name(0), st.dtype)
for kw in (dict(), dict(strength=0.5), dict(strength=0.5, preserve_color=True)):
    alone = [st(torch.from_numpy(x).permute(2, 0, 1).float().div(255), as_uint8=True, **kw) for x in pixels]
    together = st.stylize_batch(pixels, **kw)
    d = [(a.int() - b.int()).abs() for a, b in zip(alone, together)]
    print(kw, "largest difference", max(int(x.max()) for x in d), "levels; share of values off by more than 1:",
          f"{max(float((x > 1).float().mean()) for x in d):.2e}")
