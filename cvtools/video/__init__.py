"""Video: stylize and dream movies (``cvtools stylize clip.mp4``, ``cvtools dream clip.mp4``).

- :mod:`cvtools.video.io`: decoding (mp4/mov/mkv/webm/avi through PyAV, animated GIF/WebP through
  Pillow), validation of untrusted files, encoding with the audio track kept, atomic writes.
- :mod:`cvtools.video.process`: ``stylize_video`` and ``dream_video``, decode → compute → encode
  overlapped so the device stays busy.

PyAV is imported only when a video is actually read or written.
"""
