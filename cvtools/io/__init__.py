"""Every file in and out, one job per module (none imports torch at import time):

- :mod:`~cvtools.io.decode`: image files to 8-bit RGB (+ alpha), checked; tensors <-> PIL;
- :mod:`~cvtools.io.discover`: files, folders and patterns to the list of inputs;
- :mod:`~cvtools.io.container`: opening a video container's file (shared with ``cvtools.video``);
- :mod:`~cvtools.io.markers`: the provenance marker every output carries;
- :mod:`~cvtools.io.naming`: output names and the re-run policy, kept per run in an ``Outputs``;
- :mod:`~cvtools.io.atomic`: atomic writes and ``save_image``.
- :mod:`~cvtools.io.webp`: animated WebP, lossy with its transparency kept.

Import from the module that does the job (``from cvtools.io.decode import load_image``): this
package imports nothing itself, so using one job does not load the others.
"""
