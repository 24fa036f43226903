"""Time-series AC power flow over the PTUs of a delivery day, and the zone x PTU traffic light (pure: no Django).

The batch engine is power-grid-model (LF Energy): the network is converted once from pandapower tables into
power-grid-model input arrays, and one `calculate_power_flow` call solves every PTU (a batch of updates to the
loads and generators). `run_time_series_pandapower` solves the same PTUs one by one with pandapower: the tests
compare the two and bench/power_flow.py times them (docs/network.md, "Forecast").

Conventions: loads consume (+P), generators (sgen) produce (+P); `bus_p_mw` adds consumption at a bus. Loading
is in percent of the element's rating (lines: current over max_i_ka x df x parallel; transformers: apparent
power over sn_mva), voltages in per unit.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np

from grid.network import LINE_LOADING_LIMIT_PERCENT, VOLTAGE_MAX_PU, VOLTAGE_MIN_PU, WATCH_LOADING_PERCENT

NORMAL, WATCH, CONGESTED = 0, 1, 2
STATE_NAMES = ("normal", "watch", "congested")
# An ideal slack like pandapower's ext_grid without short-circuit data: a very strong source.
SOURCE_SK_VA = 1e15


class TimeSeriesError(ValueError):
    """The injections do not fit the network, or the power flow did not converge; the message is shown."""


@dataclass(frozen=True)
class Injections:
    """Per PTU (rows) and element (columns): P/Q of the network's loads and sgens, plus extra demand per bus."""

    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    sgen_p_mw: np.ndarray
    sgen_q_mvar: np.ndarray
    bus_p_mw: np.ndarray
    bus_q_mvar: np.ndarray

    @property
    def ptu_count(self) -> int:
        return self.load_p_mw.shape[0]


@dataclass(frozen=True)
class TimeSeriesResult:
    """Per PTU (rows): loading of every line and transformer (%) and voltage of every bus (p.u.)."""

    line_loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    bus_voltage_pu: np.ndarray


def static_injections(net, ptu_count: int) -> Injections:
    """The network's own P/Q (times its scaling) in every PTU: the forecast when no profile is known."""

    def column(table, name) -> np.ndarray:
        if not len(table):
            return np.zeros(0)
        values = table[name].to_numpy(dtype=float) * table["scaling"].to_numpy(dtype=float)
        return np.where(table["in_service"].to_numpy(dtype=bool), values, 0.0)

    def repeat(values: np.ndarray) -> np.ndarray:
        return np.tile(values, (ptu_count, 1))

    buses = np.zeros((ptu_count, len(net.bus)))
    return Injections(
        load_p_mw=repeat(column(net.load, "p_mw")),
        load_q_mvar=repeat(column(net.load, "q_mvar")),
        sgen_p_mw=repeat(column(net.sgen, "p_mw")),
        sgen_q_mvar=repeat(column(net.sgen, "q_mvar")),
        bus_p_mw=buses,
        bus_q_mvar=buses.copy(),
    )


def check_injections(net, injections: Injections) -> None:
    rows = injections.ptu_count
    expected = {
        "load_p_mw": (rows, len(net.load)),
        "load_q_mvar": (rows, len(net.load)),
        "sgen_p_mw": (rows, len(net.sgen)),
        "sgen_q_mvar": (rows, len(net.sgen)),
        "bus_p_mw": (rows, len(net.bus)),
        "bus_q_mvar": (rows, len(net.bus)),
    }
    for name, shape in expected.items():
        array = getattr(injections, name)
        if array.shape != shape:
            raise TimeSeriesError(f"{name} has shape {array.shape}, expected {shape}.")
        if not np.isfinite(array).all():
            raise TimeSeriesError(f"{name} has values that are not finite numbers.")


# --- power-grid-model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    input_data: dict
    load_ids: np.ndarray  # network loads, then sgens (as negative loads are not used: sym_gen), then buses
    gen_ids: np.ndarray
    bus_load_ids: np.ndarray
    line_ids: np.ndarray
    trafo_ids: np.ndarray
    node_ids: np.ndarray


def _open_sides(net, element_kind: str, table) -> dict[tuple[int, int], bool]:
    """(element index, bus) -> False where an open switch cuts that side of the element."""
    switches = net.switch if "switch" in net else None
    cut: dict[tuple[int, int], bool] = {}
    if switches is None or not len(switches):
        return cut
    for bus, element, et, closed in switches[["bus", "element", "et", "closed"]].itertuples(index=False):
        if et == element_kind and not closed and element in table.index:
            cut[(int(element), int(bus))] = False
    return cut


def _pgm_model(net) -> _Model:
    from power_grid_model import LoadGenType, WindingType, initialize_array

    frequency = float(getattr(net, "f_hz", 50.0) or 50.0)
    bus_index = net.bus.index.to_numpy()
    node_ids = np.arange(len(bus_index))
    node_of = dict(zip(bus_index.tolist(), node_ids.tolist(), strict=True))
    next_id = len(node_ids)

    def ids(count: int) -> np.ndarray:
        nonlocal next_id
        block = np.arange(next_id, next_id + count)
        next_id += count
        return block

    def nodes(values) -> np.ndarray:
        return np.array([node_of[int(v)] for v in values], dtype=np.int32)

    node = initialize_array("input", "node", len(node_ids))
    node["id"] = node_ids
    node["u_rated"] = net.bus["vn_kv"].to_numpy(dtype=float) * 1e3

    lines = net.line
    line = initialize_array("input", "line", len(lines))
    line_ids = ids(len(lines))
    cut = _open_sides(net, "l", lines)
    parallel = lines["parallel"].to_numpy(dtype=float)
    length = lines["length_km"].to_numpy(dtype=float)
    capacitance = lines["c_nf_per_km"].to_numpy(dtype=float) * 1e-9 * length * parallel
    conductance = (
        lines["g_us_per_km"].to_numpy(dtype=float) * 1e-6 * length * parallel
        if "g_us_per_km" in lines
        else np.zeros(len(lines))
    )
    line["id"] = line_ids
    line["from_node"] = nodes(lines["from_bus"])
    line["to_node"] = nodes(lines["to_bus"])
    in_service = lines["in_service"].to_numpy(dtype=bool)
    line["from_status"] = [
        int(s and cut.get((int(i), int(b)), True))
        for i, b, s in zip(lines.index, lines["from_bus"], in_service, strict=True)
    ]
    line["to_status"] = [
        int(s and cut.get((int(i), int(b)), True))
        for i, b, s in zip(lines.index, lines["to_bus"], in_service, strict=True)
    ]
    line["r1"] = lines["r_ohm_per_km"].to_numpy(dtype=float) * length / parallel
    line["x1"] = lines["x_ohm_per_km"].to_numpy(dtype=float) * length / parallel
    line["c1"] = capacitance
    line["tan1"] = np.divide(
        conductance,
        2 * np.pi * frequency * capacitance,
        out=np.zeros(len(lines)),
        where=capacitance > 0,
    )
    line["i_n"] = lines["max_i_ka"].to_numpy(dtype=float) * 1e3 * lines["df"].to_numpy(dtype=float) * parallel

    trafos = net.trafo
    trafo = initialize_array("input", "transformer", len(trafos))
    trafo_ids = ids(len(trafos))
    cut = _open_sides(net, "t", trafos)
    if len(trafos):
        sn = trafos["sn_mva"].to_numpy(dtype=float) * 1e6 * trafos["parallel"].to_numpy(dtype=float)
        shift = trafos["shift_degree"].fillna(0).to_numpy(dtype=float)
        clock = np.round(shift / 30).astype(int) % 12
        hv_side = trafos["tap_side"].fillna("hv").to_numpy() != "lv"
        tap_voltage = np.where(hv_side, trafos["vn_hv_kv"], trafos["vn_lv_kv"]).astype(float) * 1e3
        status = trafos["in_service"].to_numpy(dtype=bool)
        trafo["id"] = trafo_ids
        trafo["from_node"] = nodes(trafos["hv_bus"])
        trafo["to_node"] = nodes(trafos["lv_bus"])
        trafo["from_status"] = [
            int(s and cut.get((int(i), int(b)), True))
            for i, b, s in zip(trafos.index, trafos["hv_bus"], status, strict=True)
        ]
        trafo["to_status"] = [
            int(s and cut.get((int(i), int(b)), True))
            for i, b, s in zip(trafos.index, trafos["lv_bus"], status, strict=True)
        ]
        trafo["u1"] = trafos["vn_hv_kv"].to_numpy(dtype=float) * 1e3
        trafo["u2"] = trafos["vn_lv_kv"].to_numpy(dtype=float) * 1e3
        trafo["sn"] = sn
        trafo["uk"] = trafos["vk_percent"].to_numpy(dtype=float) / 100
        trafo["pk"] = trafos["vkr_percent"].to_numpy(dtype=float) / 100 * sn
        trafo["i0"] = trafos["i0_percent"].to_numpy(dtype=float) / 100
        trafo["p0"] = trafos["pfe_kw"].to_numpy(dtype=float) * 1e3
        # Odd clocks need a delta winding (YNd5: SimBench's HV/MV transformers); magnitudes do not depend on it.
        trafo["winding_from"] = WindingType.wye_n
        trafo["winding_to"] = np.where(clock % 2 == 1, WindingType.delta, WindingType.wye_n)
        trafo["clock"] = clock
        trafo["tap_side"] = np.where(hv_side, 0, 1)
        tap_neutral = trafos["tap_neutral"].fillna(0).to_numpy(dtype=float)
        trafo["tap_pos"] = trafos["tap_pos"].fillna(0).to_numpy(dtype=float)
        trafo["tap_nom"] = tap_neutral
        trafo["tap_min"] = trafos["tap_min"].fillna(0).to_numpy(dtype=float)
        trafo["tap_max"] = trafos["tap_max"].fillna(0).to_numpy(dtype=float)
        trafo["tap_size"] = trafos["tap_step_percent"].fillna(0).to_numpy(dtype=float) / 100 * tap_voltage

    closed_bus_switches = (
        net.switch[(net.switch["et"] == "b") & net.switch["closed"].astype(bool)]
        if "switch" in net and len(net.switch)
        else []
    )
    link = initialize_array("input", "link", len(closed_bus_switches))
    if len(closed_bus_switches):
        link["id"] = ids(len(closed_bus_switches))
        link["from_node"] = nodes(closed_bus_switches["bus"])
        link["to_node"] = nodes(closed_bus_switches["element"])
        link["from_status"] = 1
        link["to_status"] = 1

    grids = net.ext_grid[net.ext_grid["in_service"].astype(bool)]
    if not len(grids):
        raise TimeSeriesError("The network has no external grid (slack) in service.")
    source = initialize_array("input", "source", len(grids))
    source["id"] = ids(len(grids))
    source["node"] = nodes(grids["bus"])
    source["status"] = 1
    source["u_ref"] = grids["vm_pu"].to_numpy(dtype=float)
    source["u_ref_angle"] = np.deg2rad(grids["va_degree"].fillna(0).to_numpy(dtype=float))
    source["sk"] = SOURCE_SK_VA

    load_ids = ids(len(net.load))
    bus_load_ids = ids(len(node_ids))
    all_loads = np.concatenate([load_ids, bus_load_ids])
    sym_load = initialize_array("input", "sym_load", len(all_loads))
    sym_load["id"] = all_loads
    sym_load["node"] = np.concatenate([nodes(net.load["bus"]), node_ids]).astype(np.int32)
    sym_load["status"] = np.concatenate([net.load["in_service"].to_numpy(dtype=int), np.ones(len(node_ids))])
    sym_load["type"] = LoadGenType.const_power
    sym_load["p_specified"] = 0.0
    sym_load["q_specified"] = 0.0

    gen_ids = ids(len(net.sgen))
    sym_gen = initialize_array("input", "sym_gen", len(gen_ids))
    sym_gen["id"] = gen_ids
    sym_gen["node"] = nodes(net.sgen["bus"])
    sym_gen["status"] = net.sgen["in_service"].to_numpy(dtype=int)
    sym_gen["type"] = LoadGenType.const_power
    sym_gen["p_specified"] = 0.0
    sym_gen["q_specified"] = 0.0

    input_data = {
        "node": node,
        "line": line,
        "transformer": trafo,
        "link": link,
        "source": source,
        "sym_load": sym_load,
        "sym_gen": sym_gen,
    }
    return _Model(input_data, load_ids, gen_ids, bus_load_ids, line_ids, trafo_ids, node_ids)


def run_time_series(net, injections: Injections, *, threading: int = -1) -> TimeSeriesResult:
    """AC power flow (Newton-Raphson) for every PTU in one power-grid-model batch.

    `threading`: -1 sequential, 0 one thread per core, n threads (power-grid-model's convention).
    """
    from power_grid_model import PowerGridModel, initialize_array
    from power_grid_model.errors import PowerGridError

    check_injections(net, injections)
    model = _pgm_model(net)
    rows = injections.ptu_count
    loads = initialize_array("update", "sym_load", (rows, len(model.load_ids) + len(model.bus_load_ids)))
    loads["id"] = np.concatenate([model.load_ids, model.bus_load_ids])
    loads["p_specified"] = np.hstack([injections.load_p_mw, injections.bus_p_mw]) * 1e6
    loads["q_specified"] = np.hstack([injections.load_q_mvar, injections.bus_q_mvar]) * 1e6
    gens = initialize_array("update", "sym_gen", (rows, len(model.gen_ids)))
    gens["id"] = model.gen_ids
    gens["p_specified"] = injections.sgen_p_mw * 1e6
    gens["q_specified"] = injections.sgen_q_mvar * 1e6
    try:
        solver = PowerGridModel(model.input_data, system_frequency=float(getattr(net, "f_hz", 50.0) or 50.0))
        output = solver.calculate_power_flow(
            update_data={"sym_load": loads, "sym_gen": gens},
            threading=threading,
            output_component_types={"node": ["u_pu"], "line": ["loading"], "transformer": ["loading"]},
        )
    except PowerGridError as error:
        raise TimeSeriesError(f"The power flow did not converge for every PTU: {error}") from error
    return TimeSeriesResult(
        line_loading_percent=output["line"]["loading"] * 100,
        trafo_loading_percent=output["transformer"]["loading"] * 100
        if len(model.trafo_ids)
        else np.zeros((rows, 0)),
        bus_voltage_pu=output["node"]["u_pu"],
    )


def pandapower_points(net, injections: Injections, ptus):
    """A copy of `net` set to each PTU's operating point in turn: yields (PTU index, network) for pandapower runs.

    The network's own loads and generators take the PTU's values; one extra load per bus carries the per-bus
    forecast rows. The caller's network stays as it was."""
    import pandapower

    net = copy.deepcopy(net)
    extra = pandapower.create_loads(net, buses=net.bus.index, p_mw=0.0, q_mvar=0.0)
    own = net.load.index.difference(extra)
    net.load["scaling"] = 1.0
    net.sgen["scaling"] = 1.0
    for row in ptus:
        net.load.loc[own, "p_mw"] = injections.load_p_mw[row]
        net.load.loc[own, "q_mvar"] = injections.load_q_mvar[row]
        net.load.loc[extra, "p_mw"] = injections.bus_p_mw[row]
        net.load.loc[extra, "q_mvar"] = injections.bus_q_mvar[row]
        net.sgen["p_mw"] = injections.sgen_p_mw[row]
        net.sgen["q_mvar"] = injections.sgen_q_mvar[row]
        yield row, net


def run_time_series_pandapower(net, injections: Injections, ptus=None) -> TimeSeriesResult:
    """The same PTUs solved one by one with pandapower.runpp: the reference the batch engine is checked against."""
    import pandapower

    check_injections(net, injections)
    ptus = list(range(injections.ptu_count)) if ptus is None else list(ptus)
    lines, trafos, buses = [], [], []
    for _row, point in pandapower_points(net, injections, ptus):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pandapower.runpp(point, numba=False, trafo_loading="power")
        lines.append(point.res_line["loading_percent"].to_numpy(dtype=float))
        trafos.append(point.res_trafo["loading_percent"].to_numpy(dtype=float))
        buses.append(point.res_bus["vm_pu"].to_numpy(dtype=float))
    return TimeSeriesResult(np.array(lines), np.array(trafos), np.array(buses))


# --- topology: feeders and which zones a branch feeds -----------------------------------------------


def _graph(net, *, skip_buses=frozenset(), with_trafos: bool = True):
    """Adjacency (scipy sparse) of buses joined by in-service lines, closed bus switches and (optionally)
    transformers, leaving out `skip_buses` and lines cut by an open switch."""
    from scipy.sparse import coo_matrix

    position = {int(b): i for i, b in enumerate(net.bus.index)}
    open_lines = set()
    if "switch" in net and len(net.switch):
        cut = net.switch[(net.switch["et"] == "l") & ~net.switch["closed"].astype(bool)]
        open_lines = {int(e) for e in cut["element"]}
    edges = [
        (int(f), int(t))
        for i, f, t, s in net.line[["from_bus", "to_bus", "in_service"]].itertuples()
        if s and int(i) not in open_lines
    ]
    if "switch" in net and len(net.switch):
        closed = net.switch[(net.switch["et"] == "b") & net.switch["closed"].astype(bool)]
        edges += [(int(b), int(e)) for b, e in closed[["bus", "element"]].itertuples(index=False)]
    if with_trafos:
        edges += [
            (int(h), int(lo))
            for h, lo, s in net.trafo[["hv_bus", "lv_bus", "in_service"]].itertuples(index=False)
            if s
        ]
    edges = [(position[a], position[b]) for a, b in edges if a not in skip_buses and b not in skip_buses]
    size = len(position)
    rows = [a for a, _ in edges]
    cols = [b for _, b in edges]
    return coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(size, size)).tocsr()


def substation_buses(net) -> set[int]:
    """The HV/MV substation: transformer buses and the busbars joined to their low-voltage side by bus switches."""
    buses = {int(b) for b in net.trafo["hv_bus"]} | {int(b) for b in net.trafo["lv_bus"]}
    if "switch" in net and len(net.switch):
        closed = net.switch[(net.switch["et"] == "b") & net.switch["closed"].astype(bool)]
        pairs = [(int(b), int(e)) for b, e in closed[["bus", "element"]].itertuples(index=False)]
        changed = True
        while changed:
            changed = False
            for a, b in pairs:
                if (a in buses) != (b in buses):
                    buses |= {a, b}
                    changed = True
    return buses


def feeders(net) -> list[list[int]]:
    """Buses per feeder: connected parts of the network once the substation buses are taken out, largest first
    (parts without a load or generator are left out)."""
    from scipy.sparse.csgraph import connected_components

    skip = substation_buses(net)
    graph = _graph(net, skip_buses=skip, with_trafos=False)
    _, labels = connected_components(graph, directed=False)
    index = [int(b) for b in net.bus.index]
    served = {int(b) for b in net.load["bus"]} | {int(b) for b in net.sgen["bus"]}
    groups: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        if index[position] not in skip:
            groups.setdefault(int(label), []).append(index[position])
    parts = [sorted(buses) for buses in groups.values() if served.intersection(buses)]
    return sorted(parts, key=lambda buses: (-len(buses), buses[0]))


def bus_coordinates(net) -> dict[int, tuple[float, float]]:
    """Bus index -> (lon, lat) from pandapower 3's `bus.geo` GeoJSON points."""
    coordinates = {}
    if "geo" not in net.bus:
        return coordinates
    for index, geo in net.bus["geo"].items():
        if isinstance(geo, str) and geo:
            point = json.loads(geo)
            if point.get("type") == "Point":
                coordinates[int(index)] = (float(point["coordinates"][0]), float(point["coordinates"][1]))
    return coordinates


def feeder_polygons(net, parts: list[list[int]], *, margin_degrees: float = 0.002) -> list[dict]:
    """One GeoJSON (Multi)Polygon per feeder: the Voronoi cells of its buses, clipped to the buffered outline
    of the whole network and merged, so neighbouring feeders share borders and never overlap."""
    from shapely import MultiPoint, Point, unary_union, voronoi_polygons
    from shapely.geometry import mapping

    coordinates = bus_coordinates(net)
    owner: dict[tuple[float, float], int] = {}
    for number, buses in enumerate(parts):
        for bus in buses:
            if bus in coordinates:
                owner.setdefault(coordinates[bus], number)
    points = MultiPoint([Point(xy) for xy in owner])
    outline = points.convex_hull.buffer(margin_degrees)
    cells = voronoi_polygons(points, extend_to=outline)
    pieces: dict[int, list] = {}
    for cell in cells.geoms:
        for xy, number in owner.items():
            if cell.contains(Point(xy)):
                pieces.setdefault(number, []).append(cell.intersection(outline))
                break
    shapes = []
    for number in range(len(parts)):
        shape = unary_union(pieces.get(number, [])).simplify(margin_degrees / 10)
        shapes.append(json.loads(json.dumps(mapping(shape))))
    return shapes


def branch_zones(net, bus_zone: dict[int, int], zone_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (lines x zones) and (transformers x zones): the zones an element lies in or feeds.

    A line is in the zones of its two buses and feeds the zones cut off from the slack when it is removed; a
    transformer feeds every zone reachable from its low-voltage side without crossing another transformer.
    """
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    index = [int(b) for b in net.bus.index]
    position = {b: i for i, b in enumerate(index)}
    zone_of = np.full(len(index), -1)
    for bus, zone in bus_zone.items():
        if bus in position:
            zone_of[position[bus]] = zone

    def zones_of(positions) -> np.ndarray:
        row = np.zeros(zone_count, dtype=bool)
        found = zone_of[np.asarray(list(positions), dtype=int)]
        row[found[found >= 0]] = True
        return row

    lines = np.zeros((len(net.line), zone_count), dtype=bool)
    graph = _graph(net)
    slack = [position[int(b)] for b in net.ext_grid["bus"]]
    reached = set(breadth_first_order(graph, slack[0], directed=False, return_predecessors=False).tolist())
    for row, (f, t) in enumerate(net.line[["from_bus", "to_bus"]].itertuples(index=False)):
        lines[row] = zones_of([position[int(f)], position[int(t)]])
        # Radial part: the buses beyond this line are those one end reaches without using the line.
        trimmed = graph.tolil()
        a, b = position[int(f)], position[int(t)]
        trimmed[a, b] = 0
        trimmed[b, a] = 0
        beyond = set(
            breadth_first_order(trimmed.tocsr(), slack[0], directed=False, return_predecessors=False).tolist()
        )
        lost = reached - beyond
        if lost:
            lines[row] |= zones_of(lost)
    trafos = np.zeros((len(net.trafo), zone_count), dtype=bool)
    without = _graph(net, with_trafos=False)
    _, labels = connected_components(without, directed=False)
    for row, lv in enumerate(net.trafo["lv_bus"]):
        trafos[row] = zones_of(np.flatnonzero(labels == labels[position[int(lv)]]))
    return lines, trafos


def zone_states(
    result: TimeSeriesResult,
    *,
    line_zones: np.ndarray,
    trafo_zones: np.ndarray,
    bus_zone_index: np.ndarray,
    zone_count: int,
    loading_limit: float = LINE_LOADING_LIMIT_PERCENT,
    watch_loading: float = WATCH_LOADING_PERCENT,
    vmin: float = VOLTAGE_MIN_PU,
    vmax: float = VOLTAGE_MAX_PU,
) -> np.ndarray:
    """Traffic light per PTU and zone (rows x zones, NORMAL/WATCH/CONGESTED).

    Congested: a line or transformer in or feeding the zone above `loading_limit`, or a bus of the zone outside
    [vmin, vmax]; watch: such an element above `watch_loading`; otherwise normal. `bus_zone_index` gives each
    bus position's zone number (-1 for none).
    """
    rows = result.bus_voltage_pu.shape[0]
    states = np.zeros((rows, zone_count), dtype=np.int8)

    def touched(mask: np.ndarray, incidence: np.ndarray) -> np.ndarray:
        if not incidence.size:
            return np.zeros((rows, zone_count), dtype=bool)
        return (mask.astype(np.int32) @ incidence.astype(np.int32)) > 0

    for threshold, state in ((watch_loading, WATCH), (loading_limit, CONGESTED)):
        hit = touched(np.nan_to_num(result.line_loading_percent) > threshold, line_zones) | touched(
            np.nan_to_num(result.trafo_loading_percent) > threshold, trafo_zones
        )
        states[hit] = state
    voltage = result.bus_voltage_pu
    outside = (voltage < vmin) | (voltage > vmax)
    bus_incidence = np.zeros((len(bus_zone_index), zone_count), dtype=bool)
    mapped = bus_zone_index >= 0
    bus_incidence[np.flatnonzero(mapped), bus_zone_index[mapped]] = True
    states[touched(outside, bus_incidence)] = CONGESTED
    return states


def profile_rows(local_starts: list, *, profile_year: int = 2016) -> np.ndarray:
    """Rows of a 15-minute yearly profile (row 0 = 1 January 00:00 local wall-clock time of `profile_year`) for
    PTUs starting at these local wall-clock times, matched by calendar day and time of day. On DST days the
    skipped hour has no PTU (92 rows) and the repeated hour reads the same rows twice (100 rows).
    SimBench's profiles cover the leap year 2016, so every calendar day has rows."""
    rows = []
    for moment in local_starts:
        day = date(profile_year, moment.month, moment.day).timetuple().tm_yday - 1
        rows.append(day * 96 + moment.hour * 4 + moment.minute // 15)
    return np.array(rows, dtype=int)
