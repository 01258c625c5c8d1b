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
def bench(quick, tiny, peers, as_json, only, device, cold):
    """Time each workload: a plain baseline (fp32, eager, unfused, channels-first) against
    cvtools' default fast path, in the same run, with speed-ups and an agreement check.

    \b
    Examples:
      cvtools bench --quick
      cvtools bench --only backbone --json > bench.json
      cvtools bench --cold              what a user waits for, first photo included
      cvtools bench --peers             pytorch-grad-cam, captum, TransformerNet: same work, ratios
    """
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
