"""``cvtools ui``: the local web page (needs ``pip install "cvtools[ui]"``)."""

import click

from cvtools.cli.common import echo_err


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but this machine's own (127.0.0.1) lets others on the "
                   "network use the page and your computer's time: use it with --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on; 0 picks a free one (printed).")
@click.option("--no-browser", is_flag=True, help="Do not open the page in the web browser.")
@click.option("--token", metavar="TEXT|auto",
              help="Ask every request for this token (auto: a random one); the printed address carries it.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.")
@click.option("--max-upload", type=click.IntRange(1, 4096), default=50, show_default=True, metavar="MB",
              help="The largest photo (or painting, guide, model) upload.")
@click.option("--max-video", type=click.IntRange(1, 65536), default=500, show_default=True, metavar="MB",
              help="The largest video upload.")
@click.option("--max-pixels", type=int, metavar="N",
              help="Refuse images over N pixels (default: CVTOOLS_MAX_PIXELS, else 100 MP; 0 disables the guard).")
def ui(host, port, no_browser, token, device, max_upload, max_video, max_pixels):
    """Open a web page to stylize, dream and explain by clicking.

    Tabs: Stylize (photos, bundled styles or your painting, blends, a before/after slider),
    Video, Dream, Explain (methods side by side, any of the top classes, any layer) and
    Webcam. Everything runs on this computer; uploads and results live in a temporary folder
    removed when the page stops (Ctrl-C). Results download with the same names, provenance
    marker and sRGB tag as the commands write.

    \b
    Examples:
      cvtools ui                          127.0.0.1, a free port, the browser opens
      cvtools ui --port 8765 --no-browser
      cvtools ui --host 0.0.0.0 --token auto   on the network, with a token
    """
    import secrets

    from cvtools.device import check_device_early
    from cvtools.ui import WILDCARD_HOSTS, require, serve
    from cvtools.ui.server import Settings, loopback

    require()
    check_device_early(device)
    if token == "auto":
        token = secrets.token_urlsafe(16)
    if not loopback(host):
        where = f"all interfaces ({host or '0.0.0.0'})" if host in WILDCARD_HOSTS else host
        echo_err(f"warning: listening on {where}: the page is reachable from the network, and anyone who "
                 "reaches it can use it and this computer's time"
                 + ("" if token else " (add --token auto to ask for a token)"))
    settings = Settings(host=host, port=port, token=token or None, device=device, max_upload=max_upload << 20,
                        max_video=max_video << 20, max_pixels=-1 if max_pixels is None else (max_pixels or None))
    serve(settings, open_browser=not no_browser, say=lambda line: click.echo(line, err=False))
