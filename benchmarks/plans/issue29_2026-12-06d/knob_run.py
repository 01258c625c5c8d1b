"""tools/video_flicker.py with stability/carry module constants set first (issue 29, 2026-12-06d probes):
python knob_run.py stability.LOCAL_TURN=1e9 stability.LOCAL_DEFORM=1e9 -- <video_flicker args>"""
import importlib
import os
import runpy
import sys

split = sys.argv.index("--")
for item in sys.argv[1:split]:
    name, value = item.split("=")
    module, const = name.rsplit(".", 1)
    setattr(importlib.import_module(f"cvtools.video.{module}"), const, None if value == "None" else float(value))
    print("set", name, value, file=sys.stderr)
here = os.path.dirname(os.path.abspath(__file__))
tools = os.path.normpath(os.path.join(here, "../../../tools"))
sys.path.insert(0, tools)
sys.argv = [os.path.join(tools, "video_flicker.py")] + sys.argv[split + 1:]
runpy.run_path(sys.argv[0], run_name="__main__")
