import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from exp import *
for kind in sys.argv[1].split(","):
    metric_flows(kind)
    for name in sys.argv[2].split(","):
        t0 = time.time(); run_net(kind, name); print(kind, name, "%.1f s" % (time.time() - t0), flush=True)
