"""Network engine: load pandapower networks, run power flows, suggest zone buses (pure: no Django).

Limits are the usual planning limits for MV networks; a DSO can pass its own.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from dataclasses import dataclass, field

from grid.geometry import ZoneShape, locate_point

LINE_LOADING_LIMIT_PERCENT = 100.0
VOLTAGE_MIN_PU = 0.95
VOLTAGE_MAX_PU = 1.05
WATCH_LOADING_PERCENT = 80.0

SIMBENCH_PREFIX = "simbench:"
DEMO_SIMBENCH_CODE = "1-MV-semiurb--0-sw"
EXAMPLES = {
    f"{SIMBENCH_PREFIX}{DEMO_SIMBENCH_CODE}": (
        "SimBench MV semi-urban (117 buses, 9 feeders, 15-minute yearly profiles, Mecklenburg DE)"
    ),
    f"{SIMBENCH_PREFIX}1-MV-urban--0-sw": "SimBench MV urban (144 buses, 15-minute yearly profiles)",
    "mv_oberrhein": "MV Oberrhein (pandapower, 179 buses, around Offenburg DE)",
    "cigre_mv": "CIGRE MV benchmark (pandapower, 15 buses)",
}


class NetworkError(ValueError):
    """The network cannot be loaded or solved; the message is shown to the DSO."""


@dataclass
class PowerFlowResult:
    converged: bool
    line_loading_percent: dict[int, float] = field(default_factory=dict)
    bus_voltage_pu: dict[int, float] = field(default_factory=dict)
    overloaded_lines: list[int] = field(default_factory=list)
    voltage_violations: list[int] = field(default_factory=list)
    max_line_loading_percent: float = 0.0
    min_voltage_pu: float = 0.0
    max_voltage_pu: float = 0.0
    line_buses: dict[int, tuple[int, int]] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "line_loading_percent": {str(k): v for k, v in self.line_loading_percent.items()},
            "bus_voltage_pu": {str(k): v for k, v in self.bus_voltage_pu.items()},
            "overloaded_lines": self.overloaded_lines,
            "voltage_violations": self.voltage_violations,
            "line_buses": {str(k): list(v) for k, v in self.line_buses.items()},
        }


def _quiet():
    warnings.simplefilter("ignore")


@functools.lru_cache(maxsize=2)
def _simbench(code: str):
    """A SimBench grid and its absolute yearly profiles (read from the simbench wheel once per process: ~10 s)."""
    import simbench

    with warnings.catch_warnings():
        _quiet()
        try:
            net = simbench.get_simbench_net(code)
        except Exception as error:  # simbench raises several kinds for unknown codes
            raise NetworkError(f"SimBench has no grid {code!r}: {error}.") from error
        profiles = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    arrays = {
        "load_p_mw": profiles[("load", "p_mw")].to_numpy(dtype=float),
        "load_q_mvar": profiles[("load", "q_mvar")].to_numpy(dtype=float),
        "sgen_p_mw": profiles[("sgen", "p_mw")].to_numpy(dtype=float),
    }
    net.profiles = {}  # the yearly tables stay in the wheel, not in every stored network model
    return net, arrays


def simbench_profiles(code: str) -> dict:
    """SimBench's absolute 15-minute profiles for the year 2016 (rows) per load / sgen (columns), in MW/Mvar."""
    return _simbench(code)[1]


@functools.lru_cache(maxsize=4)
def example_network_json(name: str) -> str:
    """The JSON of a network bundled with pandapower or simbench (built once per process: pandapower's JSON is
    slow)."""
    import pandapower
    import pandapower.networks as networks

    if name.startswith(SIMBENCH_PREFIX):
        return pandapower.to_json(_simbench(name.removeprefix(SIMBENCH_PREFIX))[0])
    with warnings.catch_warnings():
        _quiet()
        if name == "mv_oberrhein":
            net = networks.mv_oberrhein()
        elif name == "cigre_mv":
            net = networks.create_cigre_network_mv(with_der=False)
        else:
            raise NetworkError(f"Unknown example network {name!r}; choose one of {', '.join(EXAMPLES)}.")
        return pandapower.to_json(net)


def check_network_document(document) -> None:
    """A cheap check that parsed JSON is a pandapower network (`pandapower.to_json`'s envelope), before queuing.

    pandapower writes `{"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": {...}}`;
    whether the tables inside are usable is only known once pandapower reads them (on a worker).
    """
    if (
        not isinstance(document, dict)
        or document.get("_class") != "pandapowerNet"
        or "_object" not in document
    ):
        raise NetworkError("The file is not a pandapower network (pandapower.to_json output).")


def load_network(network_json: str):
    """Parse pandapower JSON; raises NetworkError with a readable message when it is not a network."""
    import pandapower

    try:
        json.loads(network_json)
    except (TypeError, ValueError, RecursionError) as error:
        raise NetworkError(f"The file is not JSON: {error}.") from error
    try:
        with warnings.catch_warnings():
            _quiet()
            net = pandapower.from_json_string(network_json)
    except Exception as error:  # pandapower raises many kinds on malformed input
        raise NetworkError(f"pandapower could not read the network: {error}.") from error
    if not hasattr(net, "bus") or len(net.bus) == 0:
        raise NetworkError("The network has no buses.")
    return net


def network_summary(net) -> dict:
    return {"buses": len(net.bus), "lines": len(net.line), "loads": len(net.load), "sgens": len(net.sgen)}


def bus_coordinates(net) -> dict[int, tuple[float, float]]:
    """Bus index → (lon, lat) where the network has geodata (pandapower 3 `bus.geo` GeoJSON points)."""
    coords: dict[int, tuple[float, float]] = {}
    if "geo" in net.bus:
        for index, geo in net.bus["geo"].items():
            if isinstance(geo, str) and geo:
                point = json.loads(geo)
                if point.get("type") == "Point":
                    coords[int(index)] = (float(point["coordinates"][0]), float(point["coordinates"][1]))
    elif hasattr(net, "bus_geodata") and len(net.bus_geodata):
        for index, row in net.bus_geodata.iterrows():
            coords[int(index)] = (float(row["x"]), float(row["y"]))
    return coords


def suggest_zone_buses(net, zones: list[ZoneShape]) -> dict[int, int]:
    """Bus index → zone id for every bus whose coordinates fall in a zone."""
    suggestion = {}
    for bus, (lon, lat) in bus_coordinates(net).items():
        zone_id = locate_point(lon, lat, zones)
        if zone_id is not None:
            suggestion[bus] = zone_id
    return suggestion


def run_power_flow(
    net,
    *,
    load_scaling: float = 1.0,
    generation_scaling: float = 1.0,
    loading_limit: float = LINE_LOADING_LIMIT_PERCENT,
    vmin: float = VOLTAGE_MIN_PU,
    vmax: float = VOLTAGE_MAX_PU,
) -> PowerFlowResult:
    """AC power flow with loads and generation scaled relative to the model's own scaling; raises NetworkError
    when it does not converge."""
    import pandapower

    if load_scaling < 0 or generation_scaling < 0:
        raise NetworkError("Scaling factors must not be negative.")
    if len(net.load):
        net.load["scaling"] = net.load["scaling"] * load_scaling
    if len(net.sgen):
        net.sgen["scaling"] = net.sgen["scaling"] * generation_scaling
    try:
        with warnings.catch_warnings():
            _quiet()
            pandapower.runpp(net, numba=False)
    except Exception as error:
        raise NetworkError(f"The power flow did not converge for this scenario: {error}.") from error
    loading = {
        int(i): round(float(v), 3) for i, v in net.res_line["loading_percent"].items() if not math.isnan(v)
    }
    voltage = {int(i): round(float(v), 5) for i, v in net.res_bus["vm_pu"].items() if not math.isnan(v)}
    return PowerFlowResult(
        converged=True,
        line_loading_percent=loading,
        bus_voltage_pu=voltage,
        overloaded_lines=sorted(i for i, v in loading.items() if v > loading_limit),
        voltage_violations=sorted(i for i, v in voltage.items() if v < vmin or v > vmax),
        max_line_loading_percent=max(loading.values(), default=0.0),
        min_voltage_pu=min(voltage.values(), default=0.0),
        max_voltage_pu=max(voltage.values(), default=0.0),
        line_buses={int(i): (int(r["from_bus"]), int(r["to_bus"])) for i, r in net.line.iterrows()},
    )


def zone_statuses(result: PowerFlowResult, bus_zone: dict[int, int]) -> dict[int, str]:
    """Traffic light per zone: congested (overload or voltage violation), watch (loading above 80%), normal."""
    status: dict[int, str] = dict.fromkeys(set(bus_zone.values()), "normal")
    for line, loading in result.line_loading_percent.items():
        buses = result.line_buses.get(line, ())
        for bus in buses:
            zone = bus_zone.get(bus)
            if zone is None:
                continue
            if loading > LINE_LOADING_LIMIT_PERCENT:
                status[zone] = "congested"
            elif loading > WATCH_LOADING_PERCENT and status[zone] == "normal":
                status[zone] = "watch"
    for bus in result.voltage_violations:
        zone = bus_zone.get(bus)
        if zone is not None:
            status[zone] = "congested"
    return status
