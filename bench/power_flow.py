"""Time-series power flow benchmark (issue 11, item 2): 96 PTUs of the demo grid (SimBench MV semi-urban, its
own 15-minute profiles for 20 January) solved by power-grid-model in one batch (grid.timeseries.run_time_series)
and by pandapower.runpp once per PTU (grid.timeseries.run_time_series_pandapower), wall and CPU time.

    python bench/power_flow.py [--repeat 5] [--pandapower-repeat 1]

No database: the engines are pure. The first (untimed) call of each warms imports and caches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grid import network, timeseries  # noqa: E402


def timed(function, repeat: int) -> tuple[float, float, object]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed batch runs (median)")
    parser.add_argument("--pandapower-repeat", type=int, default=1, help="timed pandapower loops (median)")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    code = network.DEMO_SIMBENCH_CODE
    started = time.perf_counter()
    net = network.load_network(network.example_network_json(network.SIMBENCH_PREFIX + code))
    profiles = network.simbench_profiles(code)
    print(
        f"SimBench {code}: {len(net.bus)} buses, {len(net.line)} lines, {len(net.trafo)} transformers, "
        f"{len(net.load)} loads, {len(net.sgen)} sgens (loaded in {time.perf_counter() - started:.1f} s)"
    )
    rows = np.arange(96) + 96 * 19
    injections = timeseries.Injections(
        load_p_mw=profiles["load_p_mw"][rows],
        load_q_mvar=profiles["load_q_mvar"][rows],
        sgen_p_mw=profiles["sgen_p_mw"][rows],
        sgen_q_mvar=np.zeros((96, len(net.sgen))),
        bus_p_mw=np.zeros((96, len(net.bus))),
        bus_q_mvar=np.zeros((96, len(net.bus))),
    )
    timeseries.run_time_series(net, injections)  # warm-up
    wall, cpu, batch = timed(lambda: timeseries.run_time_series(net, injections), arguments.repeat)
    print(
        f"power-grid-model batch, 96 PTUs, sequential: median {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU "
        f"({wall * 1000 / 96:.2f} ms per PTU; {arguments.repeat} runs, model building included)"
    )
    wall_t, cpu_t, _ = timed(
        lambda: timeseries.run_time_series(net, injections, threading=0), arguments.repeat
    )
    print(
        f"power-grid-model batch, 96 PTUs, one thread per core: median {wall_t * 1000:.1f} ms wall, "
        f"{cpu_t * 1000:.1f} ms CPU"
    )
    timeseries.run_time_series_pandapower(net, injections, ptus=[0])  # warm-up
    pp_wall, pp_cpu, reference = timed(
        lambda: timeseries.run_time_series_pandapower(net, injections), arguments.pandapower_repeat
    )
    print(
        f"pandapower runpp per PTU, 96 PTUs: median {pp_wall * 1000:.0f} ms wall, {pp_cpu * 1000:.0f} ms CPU "
        f"({pp_wall * 1000 / 96:.1f} ms per PTU)"
    )
    print(
        f"speed-up (wall): {pp_wall / wall:.0f}x; largest difference: line loading "
        f"{np.abs(batch.line_loading_percent - reference.line_loading_percent).max():.2e} %-points, voltage "
        f"{np.abs(batch.bus_voltage_pu - reference.bus_voltage_pu).max():.2e} p.u."
    )


if __name__ == "__main__":
    main()
