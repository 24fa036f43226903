"""What a network-aware session adds before its LP (issue 11 item 4): linearising the DSO's network at every PTU.

`grid.sensitivity.linearise_points` (the service path: each PTU's point set on a pandapower copy, bus injections
read from it, a Newton-Raphson warm-started from the previous PTU, sensitivities) on the demo's SimBench grid over
96 PTUs of SimBench profiles, against a floor in the same run: the same Newton-Raphson and sensitivities on bus
injections computed beforehand (what bench/network_clearing.py does). Medians of --repeat runs, wall and CPU time
of this process. The clearing LP itself is timed by bench/network_clearing.py.

    .venv/bin/python bench/network_session.py --repeat 3
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")

import copy  # noqa: E402

from grid import network, timeseries  # noqa: E402
from grid.sensitivity import bus_injections, linearise_points, power_flow_model  # noqa: E402

N_PTUS = 96


def timed(work) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    net = network.load_network(
        network.example_network_json(network.SIMBENCH_PREFIX + network.DEMO_SIMBENCH_CODE)
    )
    profiles = network.simbench_profiles(network.DEMO_SIMBENCH_CODE)
    rows = np.arange(20 * N_PTUS, 21 * N_PTUS)  # 21 January 2016
    injections = timeseries.Injections(
        load_p_mw=profiles["load_p_mw"][rows],
        load_q_mvar=profiles["load_q_mvar"][rows],
        sgen_p_mw=profiles["sgen_p_mw"][rows],
        sgen_q_mvar=np.zeros((N_PTUS, len(net.sgen))),
        bus_p_mw=np.zeros((N_PTUS, len(net.bus))),
        bus_q_mvar=np.zeros((N_PTUS, len(net.bus))),
    )
    model = power_flow_model(copy.deepcopy(net))
    p = np.zeros((model.buses.size, N_PTUS))
    q = np.zeros_like(p)
    for t, point in timeseries.pandapower_points(net, injections, range(N_PTUS)):
        p[:, t], q[:, t] = bus_injections(point, model.buses)

    def floor():
        voltage, out = None, []
        for t in range(N_PTUS):
            voltage, converged, _ = model.solve(p[:, t], q[:, t], v0=voltage)
            assert converged
            out.append(model.sensitivities(voltage))
        return out

    service, base = [], []
    for _ in range(args.repeat):
        base.append(timed(floor))
        service.append(timed(lambda: linearise_points(net, injections, range(N_PTUS))))
    same = all(
        np.allclose(a.ptdf, b.ptdf, atol=1e-9) and np.allclose(a.base_flow_mw, b.base_flow_mw, atol=1e-9)
        for a, b in zip(service[-1][2], base[-1][2], strict=True)
    )
    print(
        f"SimBench {network.DEMO_SIMBENCH_CODE}: {model.buses.size} buses, {model.rows.size} branches, {N_PTUS} PTUs"
    )
    for name, runs in (("service (linearise_points)", service), ("floor (precomputed injections)", base)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"  {name}: median wall {wall:.2f} s, CPU {cpu:.2f} s over {len(runs)} runs")
    ratio = statistics.median(r[1] for r in service) / statistics.median(r[1] for r in base)
    print(f"  ratio service / floor (CPU): {ratio:.2f}x; same sensitivities: {same}")


if __name__ == "__main__":
    main()
