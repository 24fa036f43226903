"""The batch time-series engine (grid/timeseries.py) against pandapower, and the zone x PTU traffic light."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexmarket import ptu
from grid import network, timeseries

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
CODE = network.DEMO_SIMBENCH_CODE


@pytest.fixture(scope="module")
def simbench_day():
    """The demo grid with 96 PTUs of its SimBench profiles (20 January), loads doubled to stress it."""
    net = network.load_network(network.example_network_json(network.SIMBENCH_PREFIX + CODE))
    profiles = network.simbench_profiles(CODE)
    rows = np.arange(96) + 96 * 19
    injections = timeseries.Injections(
        load_p_mw=profiles["load_p_mw"][rows] * 2,
        load_q_mvar=profiles["load_q_mvar"][rows] * 2,
        sgen_p_mw=profiles["sgen_p_mw"][rows],
        sgen_q_mvar=np.zeros((96, len(net.sgen))),
        bus_p_mw=np.zeros((96, len(net.bus))),
        bus_q_mvar=np.zeros((96, len(net.bus))),
    )
    return net, injections


def test_batch_power_flow_matches_pandapower_on_sampled_ptus(simbench_day):
    net, injections = simbench_day
    # An extra 1.5 MW at one feeder bus in the evening, as a D-prognosis adds it.
    bus_p = injections.bus_p_mw.copy()
    bus_p[72:80, net.bus.index.get_loc(int(timeseries.feeders(net)[0][-1]))] = 1.5
    injections = timeseries.Injections(**{**injections.__dict__, "bus_p_mw": bus_p})
    batch = timeseries.run_time_series(net, injections)
    sampled = [0, 37, 74, 95]
    reference = timeseries.run_time_series_pandapower(net, injections, ptus=sampled)
    assert batch.line_loading_percent.shape == (96, len(net.line))
    assert batch.trafo_loading_percent.shape == (96, len(net.trafo))
    assert np.allclose(batch.line_loading_percent[sampled], reference.line_loading_percent, atol=1e-3)
    assert np.allclose(batch.trafo_loading_percent[sampled], reference.trafo_loading_percent, atol=1e-3)
    assert np.allclose(batch.bus_voltage_pu[sampled], reference.bus_voltage_pu, atol=1e-6)
    assert batch.line_loading_percent[74].max() > batch.line_loading_percent[0].max()


def test_injections_of_the_wrong_shape_are_refused(simbench_day):
    net, injections = simbench_day
    broken = timeseries.Injections(**{**injections.__dict__, "bus_p_mw": np.zeros((96, 3))})
    with pytest.raises(timeseries.TimeSeriesError, match="bus_p_mw"):
        timeseries.run_time_series(net, broken)


def test_feeders_partition_the_buses_below_the_substation(simbench_day):
    net, _ = simbench_day
    parts = timeseries.feeders(net)
    substation = timeseries.substation_buses(net)
    assert len(parts) == 9
    flat = [bus for part in parts for bus in part]
    assert len(flat) == len(set(flat)) and not substation & set(flat)
    shapes = timeseries.feeder_polygons(net, parts)
    from shapely.geometry import shape

    polygons = [shape(geometry) for geometry in shapes]
    for i, first in enumerate(polygons):
        for second in polygons[i + 1 :]:
            # Simplified borders may cross by slivers, far below the zones' overlap tolerance.
            assert first.intersection(second).area < 0.001 * min(first.area, second.area)
    coordinates = timeseries.bus_coordinates(net)
    from shapely.geometry import Point

    for number, part in enumerate(parts):
        assert all(polygons[number].buffer(1e-9).contains(Point(coordinates[bus])) for bus in part)


@pytest.mark.parametrize(("day", "count"), [(datetime(2026, 3, 29), 92), (datetime(2026, 10, 25), 100)])
def test_profile_rows_follow_the_local_clock_on_dst_days(day, count):
    starts = [moment.astimezone(AMSTERDAM) for moment in ptu.ptu_starts(day.date(), "Europe/Amsterdam")]
    rows = timeseries.profile_rows(starts)
    assert len(rows) == count
    first = (datetime(2016, day.month, day.day).timetuple().tm_yday - 1) * 96
    assert rows[0] == first and rows[-1] == first + 95
    if count == 92:
        assert first + 8 not in rows  # 02:00-03:00 does not exist on the spring day
    else:
        assert list(rows).count(first + 8) == 2  # 02:00-03:00 happens twice in autumn


def _line_net():
    """Slack - bus 1 - (line 0) - bus 2 | bus 3 - (line 1) - bus 4: two zones along one radial feeder."""
    import pandapower

    net = pandapower.create_empty_network()
    buses = [pandapower.create_bus(net, vn_kv=20.0) for _ in range(4)]
    pandapower.create_ext_grid(net, buses[0])
    for a, b in zip(buses, buses[1:], strict=False):
        pandapower.create_line_from_parameters(
            net, a, b, length_km=1, r_ohm_per_km=0.2, x_ohm_per_km=0.1, c_nf_per_km=0, max_i_ka=0.2
        )
    return net


def test_traffic_light_by_hand():
    net = _line_net()
    bus_zone = {1: 0, 2: 1, 3: 1}  # zone 0: bus 1; zone 1: buses 2 and 3 (beyond line 1)
    line_zones, trafo_zones = timeseries.branch_zones(net, bus_zone, 2)
    # Line 0 (0-1) feeds both zones; line 1 (1-2) is in zones 0 and 1 and feeds 1; line 2 (2-3) is zone 1 only.
    assert line_zones.tolist() == [[True, True], [True, True], [False, True]]
    result = timeseries.TimeSeriesResult(
        line_loading_percent=np.array(
            [[10.0, 10.0, 10.0], [10.0, 10.0, 85.0], [10.0, 10.0, 120.0], [101.0, 10.0, 10.0]]
        ),
        trafo_loading_percent=np.zeros((4, 0)),
        bus_voltage_pu=np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1.0]]),
    )
    index = np.array([-1, 0, 1, 1])
    states = timeseries.zone_states(
        result, line_zones=line_zones, trafo_zones=trafo_zones, bus_zone_index=index, zone_count=2
    )
    N, W, C = timeseries.NORMAL, timeseries.WATCH, timeseries.CONGESTED
    assert states.tolist() == [[N, N], [N, W], [N, C], [C, C]]
    low = timeseries.TimeSeriesResult(
        result.line_loading_percent[:1], result.trafo_loading_percent[:1], np.array([[1, 0.94, 1, 1.0]])
    )
    assert timeseries.zone_states(
        low, line_zones=line_zones, trafo_zones=trafo_zones, bus_zone_index=index, zone_count=2
    ).tolist() == [[C, N]]


def test_static_injections_repeat_the_network_values():
    import pandapower

    net = _line_net()
    pandapower.create_load(net, 3, p_mw=0.5, q_mvar=0.1)
    injections = timeseries.static_injections(net, 4)
    assert injections.load_p_mw.shape == (4, 1) and (injections.load_p_mw == 0.5).all()
    result = timeseries.run_time_series(net, injections)
    reference = timeseries.run_time_series_pandapower(net, injections, ptus=[0])
    assert np.allclose(result.line_loading_percent[0], reference.line_loading_percent[0], atol=1e-3)
    assert result.bus_voltage_pu.shape == (4, 4)


def test_time_steps_differ_only_by_their_injections():
    net = _line_net()
    base = timeseries.static_injections(net, 3)
    bus_p = np.zeros((3, 4))
    bus_p[1, 3] = 1.0
    bus_p[2, 3] = 2.0
    result = timeseries.run_time_series(net, timeseries.Injections(**{**base.__dict__, "bus_p_mw": bus_p}))
    loading = result.line_loading_percent[:, 2]
    assert loading[0] < 1e-6 < loading[1] < loading[2]
    assert result.bus_voltage_pu[2, 3] < result.bus_voltage_pu[1, 3] < 1.0 + 1e-9
    assert timedelta(minutes=15) == ptu.PTU


@settings(max_examples=15, deadline=None)
@given(
    loads=st.lists(st.tuples(st.floats(0, 2.5), st.floats(-0.5, 0.8)), min_size=3, max_size=3),
    ptus=st.integers(1, 4),
)
def test_batch_matches_pandapower_for_any_injections(loads, ptus):
    """Property: on a radial feeder, any consumption pattern gives pandapower's loading and voltages."""
    net = _line_net()
    rng = np.random.default_rng(len(loads) + ptus)
    bus_p = np.zeros((ptus, 4))
    bus_q = np.zeros((ptus, 4))
    for position, (p, q) in enumerate(loads, start=1):
        bus_p[:, position] = p * rng.uniform(0.5, 1.0, ptus)
        bus_q[:, position] = q
    injections = timeseries.Injections(
        **{**timeseries.static_injections(net, ptus).__dict__, "bus_p_mw": bus_p, "bus_q_mvar": bus_q}
    )
    batch = timeseries.run_time_series(net, injections)
    reference = timeseries.run_time_series_pandapower(net, injections)
    assert np.allclose(batch.line_loading_percent, reference.line_loading_percent, atol=1e-3)
    assert np.allclose(batch.bus_voltage_pu, reference.bus_voltage_pu, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    loading=st.lists(st.floats(0, 150), min_size=3, max_size=3),
    extra=st.lists(st.floats(0, 50), min_size=3, max_size=3),
)
def test_more_loading_never_lowers_a_zone_state(loading, extra):
    """Property: the traffic light is monotone in loading."""
    net = _line_net()
    line_zones, trafo_zones = timeseries.branch_zones(net, {1: 0, 2: 1, 3: 1}, 2)
    index = np.array([-1, 0, 1, 1])

    def states(values):
        result = timeseries.TimeSeriesResult(np.array([values]), np.zeros((1, 0)), np.ones((1, 4)))
        return timeseries.zone_states(
            result, line_zones=line_zones, trafo_zones=trafo_zones, bus_zone_index=index, zone_count=2
        )

    assert (states(np.array(loading) + np.array(extra)) >= states(np.array(loading))).all()
