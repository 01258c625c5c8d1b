"""`cvtools bench` on tiny CPU workloads: every workload runs at size "tiny" (a few pixels, one
repeat: seconds each on a 2-core CPU) and gives rows with the fields it promises, each group of
rows led by its baseline; the JSON output parses; an unknown --only is a one-line error;
`--peers` lists every peer and measures the installed ones on the same work (captum always:
it is a dependency). No timing is asserted: speed lives in BENCHMARKS.md."""

import json

import pytest

from cvtools.bench import Row, Suite, format_table, run_suite
from cvtools.bench.workloads import WORKLOADS

ROW_FIELDS = {f for f in Row.__dataclass_fields__}
#: workloads whose rows are whole runs divided by their items: no separate first call
WHOLE_RUNS = {"folder"}


def _check_rows(suite: Suite, name: str):
    import torch

    assert suite.device.startswith("CPU (") and "threads" in suite.device
    assert suite.torch == torch.__version__
    assert suite.rows, name
    for r in suite.rows:
        assert r.workload == name
        assert r.ms > 0 and r.throughput > 0 and r.ratio > 0, r
        assert r.first_ms == 0 if name in WHOLE_RUNS else r.first_ms > 0, r
        assert r.variant and r.per_item and r.unit, r
    # each group's first row is the baseline its speed-ups are measured against (one group, "",
    # for most workloads; a CAM method or a network for cams and user-gradcam)
    groups = {}
    for r in suite.rows:
        groups.setdefault(r.group, []).append(r)
    assert [g for g in groups] == list(dict.fromkeys(r.group for r in suite.rows))  # contiguous
    for rows in groups.values():
        base = rows[0]
        assert base.ratio == 1.0 and "baseline" in base.variant, base
        # the speed-up is over the baseline: its time per call, or per item where a variant's
        # call processes more items (train-style's bigger batch)
        for r in rows[1:]:
            assert "baseline" not in r.variant, r
            assert r.ratio in (pytest.approx(base.ms / r.ms, rel=1e-6),
                               pytest.approx(r.throughput / base.throughput, rel=1e-6)), r


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("cams", "user-gradcam", "painting") else n
                                  for n in WORKLOADS])  # these three: 6-11 s each on 2 cores, the rest under 2
def test_each_workload_runs_tiny_on_the_cpu_and_gives_its_rows(name):
    seen = []
    suite = run_suite(device="cpu", size="tiny", only=[name], progress=seen.append)
    assert seen == [name]
    _check_rows(suite, name)
    table = format_table(suite)
    assert suite.device in table and f"torch {suite.torch}" in table
    lines = [line for line in table.splitlines() if line.startswith(name)]
    assert len(lines) == len(suite.rows)
    for line, r in zip(lines, suite.rows):
        assert r.variant in line and f"{r.ratio:.2f}x" in line
        assert ("       -" in line) == (r.first_ms == 0)  # no first call: a dash, not "0ms"


@pytest.mark.slow
def test_cli_json_parses_and_has_every_field(run_cli):
    r = run_cli("bench", "--tiny", "--device", "cpu", "--only", "train-style", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # progress goes nowhere with --json: stdout is the JSON alone
    assert set(data) == {"device", "torch", "rows"}
    assert data["device"].startswith("CPU (")
    assert data["rows"] and all(set(row) == ROW_FIELDS for row in data["rows"])
    assert all(row["workload"] == "train-style" and row["ms"] > 0 for row in data["rows"])


@pytest.mark.slow
def test_cli_table_prints_device_versions_and_a_row_per_variant(run_cli):
    r = run_cli("bench", "--tiny", "--device", "cpu", "--only", "train-style")
    assert r.exit_code == 0, r.output
    assert "running train-style..." in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("device: CPU (") and "torch " in lines[0]
    assert "workload" in lines[2] and "speed-up" in lines[2]
    rows = [line for line in lines if line.startswith("train-style")]
    assert len(rows) >= 2 and all("ms" in line and "img/s" in line for line in rows)


@pytest.mark.parametrize("only", [["nope"], ["train-style", "backbon"]])
def test_unknown_only_is_a_one_line_error_that_runs_nothing(run_cli, only):
    args = [a for name in only for a in ("--only", name)]
    r = run_cli("bench", "--device", "cpu", *args)
    assert r.exit_code == 1
    bad = [n for n in only if n not in WORKLOADS][0]
    err = r.stderr.strip()
    assert "\n" not in err and f"unknown workload '{bad}'" in err and "train-style" in err, err
    assert "running" not in r.output  # refused before any workload ran


def test_suite_json_round_trips_through_json():
    suite = Suite("CPU (test, 1 threads)", "0", [Row("w", "v (baseline)", 1.5, "1 image", 666.7, "img/s")])
    data = json.loads(json.dumps(suite.to_json()))
    assert data["rows"][0]["ms"] == 1.5 and set(data["rows"][0]) == ROW_FIELDS


# ---------------------------------------------------------------------------- --peers

def test_peer_ratio_is_the_peers_time_over_cvtools():
    from cvtools.bench.peers import compare
    from cvtools.bench.timing import Timing

    row = compare("p", "1.0", "work", Timing(30.0, [30.0], 40.0), Timing(7.5, [7.5], 9.0), "ok")
    assert (row.peer_ms, row.cvtools_ms, row.ratio, row.installed) == (30.0, 7.5, 4.0, True)


def test_peers_measure_captum_on_the_same_work_and_list_the_absent(monkeypatch):
    """captum (a dependency) is always measured; a peer that cannot be imported is a row saying
    "not installed", run or not; the table has one line per peer and the ratio of the two
    medians; the maps agree (both Grad-CAM of the same model, layer, images and classes)."""
    import captum

    from cvtools.bench import peers

    monkeypatch.setattr(peers, "PEERS", peers.PEERS + [("absent peer", "no_such_module_xyz", None)])
    suite = peers.run_peers(device="cpu", size="tiny")
    rows = {r.peer: r for r in suite.rows}
    assert list(rows) == [name for name, _, _ in peers.PEERS]
    cap = rows["captum"]
    assert cap.version == captum.__version__ and cap.work.startswith("Grad-CAM, lite0 ")
    assert cap.peer_ms > 0 and cap.cvtools_ms > 0 and cap.ratio == pytest.approx(cap.peer_ms / cap.cvtools_ms)
    # maps in [0, 1]: cvtools' fused fp32 backbone against captum on the unfused one
    assert float(cap.check.split()[1]) < 1e-3, cap.check
    assert not rows["absent peer"].installed and rows["absent peer"].ratio == 0
    table = peers.format_peers(suite)
    assert suite.device in table and f"torch {suite.torch}" in table
    for name, row in rows.items():
        line = next(line for line in table.splitlines() if line.startswith(name))
        assert (f"{row.ratio:.2f}x" in line) if row.installed else line.endswith(peers.NOT_INSTALLED)


def _peer_row(name, module):
    pytest.importorskip(module, reason=f"{name} is not installed (a peer, never a dependency)")
    from cvtools.bench import peers

    suite = peers.run_peers(device="cpu", size="tiny")
    return next(r for r in suite.rows if r.peer == name)


def test_pytorch_grad_cam_peer_agrees_and_has_a_ratio():
    row = _peer_row("pytorch-grad-cam", "pytorch_grad_cam")
    assert row.installed and row.ratio == pytest.approx(row.peer_ms / row.cvtools_ms)
    assert float(row.check.split()[1]) < 1e-3, row.check  # both maps min-max scaled, same model


def test_transformer_net_peer_runs_the_same_weights():
    row = _peer_row("TransformerNet (pytorch/examples)", "transformer_net")
    assert row.installed and row.ratio == pytest.approx(row.peer_ms / row.cvtools_ms)
    # the same fp16-exact weights; cvtools computes in fp32 or bf16 (CPUs with native bf16):
    # bf16 keeps 8 bits of mantissa, a few of its roundings through 20 layers after a sigmoid
    assert float(row.check.split()[1]) < 0.05, row.check


@pytest.mark.slow
def test_cli_peers_prints_one_table(run_cli):
    r = run_cli("bench", "--peers", "--tiny", "--device", "cpu")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("peers, same inputs, same run: CPU (") and "size tiny" in lines[0]
    assert sum(line.startswith(("pytorch-grad-cam", "captum", "TransformerNet")) for line in lines) == 3
    r = run_cli("bench", "--peers", "--tiny", "--device", "cpu", "--json")
    data = json.loads(r.stdout)
    assert [row["peer"] for row in data["rows"]][1] == "captum" and data["size"] == "tiny"


def test_cold_suite_runs_a_painting_of_the_users_own(monkeypatch):
    """`cvtools bench --cold` times `stylize photo.jpg --style painting.jpg` (the any-painting
    network: on a CPU its torch-free path) beside the bundled style; the painting is a real image."""
    from PIL import Image

    from cvtools.bench import cold

    seen = []

    def fake_run(args, device, workdir):
        if "--style" in args and args[args.index("--style") + 1].endswith(".jpg"):
            with Image.open(args[args.index("--style") + 1]) as im:
                seen.append((args[0], im.size))
        return cold.ColdRow("cvtools " + " ".join(args[:1]), 0.0)

    monkeypatch.setattr(cold, "_run", fake_run)
    rows = cold.cold_suite(device="cpu", folders=False)
    assert len(rows) == 5
    assert seen == [("stylize", (640, 480))]
