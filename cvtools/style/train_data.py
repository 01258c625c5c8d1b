"""The photos a train-style run learns from: the file list and its identity, the data order (a
pure function of seed and step, so a resumed run sees the very same data), the random crops
(:class:`PhotoCrops`, decoded in DataLoader workers) and the preview photo."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch

from cvtools.errors import UsageError
from cvtools.style.train_config import TrainConfig


def photo_files(folder, exclude=(), on_note=None) -> List[Path]:
    """The training photos under ``folder``, except any under the ``exclude`` folders (a run's
    own previews, when -o is inside the photo folder, must never become training photos) and
    the pictures cvtools wrote there (stylized copies, dreams: their marker says so), which
    would teach the style a style; ``on_note`` hears how many were left out."""
    from cvtools.batch import leave_out_tool_outputs
    from cvtools.errors import safe_path
    from cvtools.io.discover import expand_inputs

    paths, problems = expand_inputs([str(folder)])
    skip = [os.path.abspath(e) + os.sep for e in exclude]
    paths = [p for p in paths if not any(os.path.abspath(p).startswith(s) for s in skip)]
    paths, outputs = leave_out_tool_outputs(paths)
    if outputs and on_note:
        n = len(outputs)
        on_note(f"{safe_path(folder)}: left out {n} picture{'s' if n != 1 else ''} cvtools made (e.g. "
                f"{outputs[0].name}): a style learns from photos, not from stylized copies")
    if problems or not paths:
        raise UsageError(f"{safe_path(folder)}: no photos to train on (give a folder of .jpg/.png images)")
    return paths


def run_identity(config: "TrainConfig", files: List[Path]) -> Dict:
    """What the run trains on, by content: the painting's SHA-256 and a digest of the photo list
    (paths relative to the folder, so a moved folder is the same run, and a folder that gained
    or lost photos is not). Saved in checkpoints and compared on resume."""
    from cvtools.weights import sha256_file

    root = os.path.abspath(config.photos)
    names = sorted(os.path.relpath(os.path.abspath(p), root) for p in files)
    ident = {"style_image": _file_digest(config.style_image, "style image"),
             "photos": hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest(),
             "photo_count": len(names)}
    w = config.backbone_weights
    if w and w != "random" and os.path.isfile(w):
        ident["backbone_weights"] = sha256_file(w)
    return ident


def _file_digest(path, what: str) -> str:
    from cvtools.errors import safe_path
    from cvtools.weights import sha256_file

    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise UsageError(f"{safe_path(path)}: no such {what}") from None
    except OSError as exc:
        raise UsageError(f"{safe_path(path)}: cannot read the {what} ({exc.strerror or exc})") from None


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def sample_indices(start_step: int, steps: int, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[int]:
    """Global sample numbers for steps [start_step, steps): a pure function of the step, so a
    resumed run sees exactly the data it would have seen. With ``world`` > 1 each rank takes its
    share of every global batch (batch_size is the global batch)."""
    per_rank = batch_size // world
    for step in range(start_step, steps):
        base = step * batch_size + rank * per_rank
        yield from range(base, base + per_rank)


class PhotoCrops(torch.utils.data.Dataset):
    """Sample ``k`` → a random resized crop (``size``², uint8 3×S×S) of photo ``perm_epoch[k % n]``.

    Crop, scale and flip come from a generator seeded by (seed, k). Decoded photos are cached per
    worker up to ``cache_bytes`` (small datasets decode once). Undecodable files are skipped
    deterministically (the next photo in the epoch's order is used) and reported once, to
    ``on_note`` (None: not reported). ``max_pixels``: the decode limit (as
    :func:`~cvtools.io.decode.load_image`'s), an argument in every worker, never read there from
    the environment. ``face_boxes`` ({file name: boxes}, :func:`cvtools.style.faces.load_face_boxes`):
    each crop gets a fourth channel, 255 inside its photo's face boxes (cropped, scaled and flipped
    with it), for the face-contrast term.
    """

    def __init__(self, files: List[Path], size: int, seed: int, scale=(0.3, 1.0), cache_bytes: int = 1 << 30,
                 on_note: Optional[Callable[[str], None]] = None, max_pixels: Optional[int] = -1,
                 face_boxes: Optional[Dict[str, list]] = None):
        self.files = list(files)
        self.face_boxes = face_boxes
        self._face_masks: Dict[int, object] = {}  # photo index -> its boxes drawn at its decoded size
        self.size = int(size)
        self.seed = int(seed)
        self.scale = tuple(scale)
        self.cache_bytes = cache_bytes
        self._cache: Dict[int, object] = {}
        self._cached = 0
        self._perm = (None, None)
        self._bad = set()
        #: (index, ImageError) of the photos :meth:`preload` could not decode
        self.failures: List = []
        self.on_note = on_note
        self.max_pixels = max_pixels

    def __getstate__(self):
        # DataLoader workers started by spawn (macOS, Windows) get a pickled copy: a callback
        # may not pickle, so theirs is None (forked workers keep it). Little is lost: preload
        # finds every undecodable photo before workers start; these notes are for photos that
        # broke during the run.
        return dict(self.__dict__, on_note=None)

    def __len__(self):  # the sampler decides the length; this is one epoch
        return len(self.files)

    def _decode(self, i: int):
        """Photo ``i`` as RGB, at most 2× the crop size on its short side (larger never shows)."""
        from cvtools.io.decode import load_image

        im = load_image(self.files[i], max_pixels=self.max_pixels).rgb
        short = min(im.size)
        limit = 2 * self.size
        if short > limit:
            from PIL import Image

            f = limit / short
            im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BILINEAR)
        return im

    def _photo(self, i: int):
        im = self._cache.get(i)
        if im is None:
            im = self._decode(i)
            nbytes = im.width * im.height * 3
            if self._cached + nbytes <= self.cache_bytes:
                self._cache[i] = im
                self._cached += nbytes
        return im

    def preload(self, budget: int = 2 << 30, threads: int = 8) -> int:
        """Decode photos into the cache now, in threads, before DataLoader workers start.

        Workers are forked with the cache already filled (shared copy-on-write), so each photo is
        decoded once per process instead of once per worker (8 workers per GPU used to decode
        every photo 8 times over before their caches warmed).
        Returns how many photos were cached. Undecodable files are noted in ``failures`` and
        skipped by ``__getitem__`` exactly as it would skip them itself, so the data order is
        unchanged.
        """
        from concurrent.futures import ThreadPoolExecutor

        from cvtools.errors import ImageError

        def load(i):
            try:
                return i, self._decode(i)
            except ImageError as exc:
                return i, exc

        with ThreadPoolExecutor(max(1, threads)) as pool:
            for i, im in pool.map(load, range(len(self.files))):
                if isinstance(im, ImageError):
                    self._bad.add(i)
                    self.failures.append((i, im))
                    continue
                nbytes = im.width * im.height * 3
                if self._cached + nbytes > budget:
                    continue  # (every photo is decoded once anyway: this finds the undecodable ones)
                self._cache[i] = im
                self._cached += nbytes
        return len(self._cache)

    def _face_mask(self, i: int, size):
        """Photo ``i``'s face boxes drawn at its decoded ``size`` (drawn once per photo and worker);
        None where it has none."""
        if i not in self._face_masks:
            from cvtools.style.faces import face_mask

            boxes = self.face_boxes.get(Path(self.files[i]).name)
            self._face_masks[i] = face_mask(size, boxes) if boxes else None
        return self._face_masks[i]

    def __getitem__(self, k: int) -> torch.Tensor:
        from PIL import Image

        from cvtools.errors import ImageError

        n = len(self.files)
        epoch, pos = divmod(int(k), n)
        if self._perm[0] != epoch:
            self._perm = (epoch, epoch_permutation(self.seed, epoch, n))
        perm = self._perm[1]
        rng = np.random.default_rng([self.seed, int(k)])
        for j in range(n):
            i = int(perm[(pos + j) % n])
            if i in self._bad:
                continue
            try:
                im = self._photo(i)
                break
            except ImageError as exc:
                self._bad.add(i)
                if self.on_note is not None:
                    self.on_note(f"skipping {exc}")
        else:
            raise UsageError("no photo in the training folder could be decoded")
        w, h = im.size
        area = w * h * rng.uniform(*self.scale)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = int(round(min(w, math.sqrt(area * aspect))))
        ch = int(round(min(h, math.sqrt(area / aspect))))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        box = (x0, y0, x0 + cw, y0 + ch)
        crop = im.resize((self.size, self.size), Image.BILINEAR, box=box, reducing_gap=2.0)
        flip = rng.random() < 0.5
        if flip:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(crop, dtype=np.uint8)
        if self.face_boxes is not None:
            mask = self._face_mask(i, (w, h))
            if mask is None:  # most photos show no face: no drawing, no resampling
                face = np.zeros((self.size, self.size, 1), dtype=np.uint8)
            else:
                mask = mask.resize((self.size, self.size), Image.BILINEAR, box=box, reducing_gap=2.0)
                if flip:
                    mask = mask.transpose(Image.FLIP_LEFT_RIGHT)
                face = np.asarray(mask, dtype=np.uint8)[..., None]
            arr = np.concatenate([arr, face], 2)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)


class _IndexList(torch.utils.data.Sampler):
    def __init__(self, start_step, steps, batch_size, rank=0, world=1):
        self.args = (start_step, steps, batch_size, rank, world)

    def __iter__(self):
        return sample_indices(*self.args)

    def __len__(self):
        start, steps, batch, rank, world = self.args
        return max(0, steps - start) * (batch // world)


def _ignore_stop_signals(worker_id: int) -> None:
    """A DataLoader worker's start: SIGTERM/SIGINT sent to the whole process group (timeout,
    docker stop, a scheduler, Ctrl-C) are the main process's to handle (it saves a checkpoint,
    then shuts the workers down); a worker dying of them first would fail the run unsaved."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def make_loader(dataset, start_step, steps, batch_size, workers, pin_memory, rank=0, world=1):
    kwargs = {}
    if workers > 0:
        kwargs = dict(persistent_workers=False, prefetch_factor=4, worker_init_fn=_ignore_stop_signals)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size // world, sampler=_IndexList(start_step, steps, batch_size, rank, world),
        num_workers=workers, pin_memory=pin_memory, drop_last=False, **kwargs)


def decoded_photos(config: TrainConfig, files: List[Path], workers: int,
                   on_note: Optional[Callable[[str], None]], max_pixels: Optional[int] = -1) -> PhotoCrops:
    """The training crops, every photo decoded once up front: a folder of undecodable files is
    one line, not a traceback from a DataLoader worker; the ones that fail are noted once each."""
    from cvtools.errors import safe_path
    from cvtools.style.faces import face_boxes_for

    try:
        boxes = face_boxes_for(config.objective)
    except (OSError, ValueError) as exc:
        raise UsageError(f"face boxes: {exc}") from None
    dataset = PhotoCrops(files, config.image_size, config.seed, config.crop_scale,
                         cache_bytes=(2 << 30) // max(1, workers), on_note=on_note, max_pixels=max_pixels,
                         face_boxes=boxes)
    dataset.preload(budget=2 << 30, threads=max(1, min(8, workers)))
    if len(dataset.failures) == len(files):
        first = dataset.failures[0][1]
        raise UsageError(f"{safe_path(config.photos)}: none of its {len(files)} photos can be decoded "
                         f"(first: {first})")
    if on_note is not None:
        for _, exc in dataset.failures:
            on_note(f"skipping {exc}")
    return dataset


def preview_image(config: TrainConfig, files: List[Path], dataset: PhotoCrops) -> torch.Tensor:
    """The photo the previews show (--preview, else the first training photo that decodes),
    512 px on its long side."""
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.stylize import resize_long_side

    if config.preview:
        rgb = load_image(config.preview, max_pixels=dataset.max_pixels).rgb
    else:
        good = min(i for i in range(len(files)) if i not in dataset._bad)
        rgb = load_image(files[good], max_pixels=dataset.max_pixels).rgb
    return pil_to_tensor(resize_long_side(rgb, 512))
