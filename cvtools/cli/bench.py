"""`cvtools bench`: speed of every workload, baseline vs fast path, on this machine."""

import json

import click


@click.command()
@click.option("--quick", is_flag=True, help="Smaller batches and fewer repeats (a minute or two on a laptop).")
@click.option("--tiny", is_flag=True,
              help="A few pixels and one repeat: every variant runs in seconds (checks that it works; "
                   "the numbers mean nothing).")
@click.option("--peers", is_flag=True,
              help="Instead: pytorch-grad-cam, captum and pytorch/examples' TransformerNet, where "
                   "installed, against cvtools on the same inputs in the same run (one table of ratios).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--only", multiple=True, metavar="WORKLOAD",
              help="Run only these workloads (repeatable): backbone, stylize, train-style, dream, gradcam, "
                   "painting, cams, folder, user-gradcam.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--cold", is_flag=True,
              help="Instead: whole commands as a user runs them, each in a fresh process (one 1080p photo; "
                   "12-photo folders of one size and of 12 sizes), split into phases.")
@click.option("--warm", is_flag=True,
              help="Instead: compile the style network for common photo and video sizes on this device, into "
                   "this machine's compile cache, so that later folders and videos on CUDA take the compiled path "
                   "by default (minutes; each size compiled and then loaded in fresh processes, both timed).")
@click.option("--warm-size", "warm_sizes", multiple=True, metavar="WxH",
              help="With --warm: these sizes (repeatable) instead of 1080p, 720p, 4K and 12 MP.")
@click.option("--clear-cache", is_flag=True,
              help="Instead: remove cvtools' compile cache (every torch version and device), then exit.")
def bench(quick, tiny, peers, as_json, only, device, cold, warm, warm_sizes, clear_cache):
    """Time each workload: a plain baseline (fp32, eager, unfused, channels-first) against
    cvtools' default fast path, in the same run, with speed-ups and an agreement check.

    \b
    Examples:
      cvtools bench --quick
      cvtools bench --only backbone --json > bench.json
      cvtools bench --cold              what a user waits for, first photo included
      cvtools bench --peers             pytorch-grad-cam, captum, TransformerNet: same work, ratios
      cvtools bench --warm              compile once for this machine: folders and videos reuse it
      cvtools bench --clear-cache       remove what --warm and --compile runs kept
    """
    if warm_sizes and not warm:
        from cvtools.errors import UsageError

        raise UsageError("--warm-size goes with --warm")
    if clear_cache:
        _clear(as_json)
        return
    if warm:
        from cvtools.bench.warm import format_warm
        from cvtools.bench.warm import warm as warm_cache

        progress = None if as_json else (lambda text: click.echo(f"{text}...", err=True))
        result = warm_cache(device=device, sizes=[_size(s) for s in warm_sizes] or None, progress=progress)
        if as_json:
            click.echo(json.dumps({**{k: v for k, v in vars(result).items() if k != "rows"},
                                   "rows": [r.to_json() for r in result.rows]}, indent=2))
        else:
            click.echo(format_warm(result))
        return
    size = "tiny" if tiny else "quick" if quick else "full"
    progress = None if as_json else (lambda name: click.echo(f"running {name}...", err=True))
    if peers:
        from cvtools.bench.peers import format_peers, run_peers

        result = run_peers(device=device, size=size, progress=progress)
        click.echo(json.dumps(result.to_json(), indent=2) if as_json else format_peers(result))
        return
    if cold:
        from cvtools.bench.cold import cold_suite, format_cold

        rows = cold_suite(device=device, progress=progress, folders=not quick)
        if as_json:
            click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        else:
            click.echo(format_cold(rows))
        return
    from cvtools.bench import format_table, run_suite

    suite = run_suite(device=device, size=size, only=list(only) or None, progress=progress)
    if as_json:
        click.echo(json.dumps(suite.to_json(), indent=2))
    else:
        click.echo(format_table(suite))


def _size(text: str):
    """"WxH" → (w, h); a usage error for anything else."""
    from cvtools.errors import UsageError

    parts = text.lower().split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        w, h = (int(p) for p in parts)
        if 16 <= w <= 16384 and 16 <= h <= 16384:
            return w, h
    raise UsageError(f"--warm-size {text!r}: give WIDTHxHEIGHT, 16 to 16384 each, e.g. 1920x1080")


def _clear(as_json: bool) -> None:
    from cvtools.compile_cache import clear, compile_root

    done = clear()
    if as_json:
        click.echo(json.dumps({"removed": [str(p) for p in done.removed], "bytes": done.bytes, "notes": done.notes},
                              indent=2))
        return
    for path in done.removed:
        click.echo(f"removed {path} ({done.bytes / 1e6:.1f} MB)")
    if not done.removed and not done.notes:
        click.echo(f"nothing to remove: {compile_root()} does not exist")
    for note in done.notes:
        click.echo(note)
