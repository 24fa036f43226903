/* flexmarket maps: Leaflet (from django-leaflet's static files), zones coloured by traffic light. */
(function () {
  "use strict";
  const STATUS_COLOURS = { normal: "#2e8b57", watch: "#d49b00", congested: "#c0392b" };
  const ASSET_COLOURS = { approved: "#2e8b57", pending: "#d49b00", rejected: "#c0392b", suspended: "#7a7a7a" };

  /* The offline base (static/geo/base-map.geojson, built by `manage.py base_map` from SimBench grids). */
  const BASE_STYLES = {
    country: { color: "#a7b0ba", weight: 1, fillColor: "#f4f2ec", fillOpacity: 1 },
    region: { color: "#9aa7b5", weight: 1, dashArray: "4 4", fillColor: "#e8edf1", fillOpacity: 1 },
    ehv_line: { color: "#b3bac4", weight: 2 },
    hv_line: { color: "#b9c1cb", weight: 1.5 },
  };
  const TILE_FAILURES_BEFORE_OFFLINE = 3;
  let baseMapData = null; // one download per page, shared by every map on it

  /* Draws the offline base under everything else (its own pane, not clickable); once per map. */
  function addOfflineBase(map, settings) {
    if (map.getPane("basemap") || !settings.baseMapUrl) return;
    map.getContainer().classList.add("map-offline");
    const pane = map.createPane("basemap");
    pane.style.zIndex = 250; // above tiles (200) that failed, below zones and network (400)
    const renderer = L.svg({ pane: "basemap" });
    baseMapData = baseMapData || fetch(settings.baseMapUrl).then((r) => (r.ok ? r.json() : null)).catch(() => null);
    baseMapData.then((data) => {
      if (!data) return;
      L.geoJSON(data, {
        pane: "basemap", renderer: renderer, interactive: false,
        style: (f) => BASE_STYLES[f.properties.kind] || {},
        pointToLayer: (f, latlng) => L.circleMarker(latlng, { pane: "basemap", renderer: renderer, interactive: false, radius: 2.5, color: "#8d97a5", weight: 1, fillColor: "#fff", fillOpacity: 1 }),
      }).addTo(map);
      map.attributionControl.addAttribution("Offline base: SimBench grids");
    });
  }

  /* Tiles from MAP_TILE_URL when set; the offline base when it is empty or the first tiles all fail to load. */
  function createMap(elementId, settings) {
    const map = L.map(elementId).setView(settings.center, settings.zoom);
    if (!settings.tileUrl) {
      addOfflineBase(map, settings);
      return map;
    }
    const tiles = L.tileLayer(settings.tileUrl, { attribution: settings.attribution, maxZoom: 19 }).addTo(map);
    let loaded = 0, failed = 0;
    tiles.on("tileload", () => { loaded += 1; });
    tiles.on("tileerror", () => {
      failed += 1;
      if (!loaded && failed === TILE_FAILURES_BEFORE_OFFLINE) {
        map.removeLayer(tiles);
        addOfflineBase(map, settings);
      }
    });
    return map;
  }

  function zoneStyle(feature) {
    const colour = STATUS_COLOURS[feature.properties.status] || "#485fc7";
    return { color: colour, weight: 2, fillColor: colour, fillOpacity: 0.25 };
  }

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  /* Names and codes come from other organisations: never put them into HTML unescaped. */
  function escapeHtml(value) {
    return String(value === undefined || value === null ? "" : value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  function zonePopup(feature) {
    const p = feature.properties;
    return `<strong>${escapeHtml(p.name)}</strong><br>${escapeHtml(p.code)}<br>${escapeHtml(p.dso)}<br>${escapeHtml(p.voltage_level)} · <span style="color:${STATUS_COLOURS[p.status] || "#485fc7"}">${escapeHtml(p.status)}</span>`;
  }

  /* A zone's name on the map itself (a permanent tooltip, over the lines but under markers and clusters);
     escaped: it comes from its DSO. */
  function labelZone(feature, layer) {
    layer.bindTooltip(escapeHtml(feature.properties.name), { permanent: true, direction: "center", className: "zone-label", pane: "overlayPane" });
  }

  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  /* Zoomed out, zone names pile up: hide each label that would overlap one shown before it (after every zoom). */
  function declutterLabels(map) {
    const shown = [];
    map.getContainer().querySelectorAll(".zone-label").forEach((label) => {
      label.style.visibility = "";
      const box = label.getBoundingClientRect();
      if (shown.some((other) => overlaps(box, other))) label.style.visibility = "hidden"; else shown.push(box);
    });
  }

  function addZones(map, geojson, options) {
    const onEachFeature = (f, l) => { l.bindPopup(zonePopup(f)); labelZone(f, l); };
    const layer = L.geoJSON(geojson, Object.assign({ style: zoneStyle, onEachFeature: onEachFeature }, options || {}));
    layer.addTo(map);
    if (!map.declutters) {
      map.declutters = true;
      map.on("zoomend", () => window.requestAnimationFrame(() => declutterLabels(map)));
    }
    if (geojson.features && geojson.features.length) {
      map.fitBounds(layer.getBounds(), { padding: [20, 20] });
    }
    window.requestAnimationFrame(() => declutterLabels(map));
    return layer;
  }

  const CLUSTER_CELL_PX = 40;
  const CLUSTER_UNTIL_ZOOM = 17; // closer in, every asset is drawn on its own

  /* Assets as circles; those that fall into one 40 px grid cell at the current zoom become one numbered cluster
     (click: zoom to its assets). Re-clustered after each zoom. getBounds() covers all assets. */
  function addAssets(map, geojson) {
    const points = L.geoJSON(geojson, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 6, color: "#222", weight: 1, fillColor: ASSET_COLOURS[f.properties.state] || "#485fc7", fillOpacity: 0.9 }),
      onEachFeature: (f, l) => l.bindPopup(`<a href="/grid/assets/${encodeURIComponent(f.properties.id)}/">${escapeHtml(f.properties.name)}</a><br>${escapeHtml(f.properties.type)} · ${escapeHtml(f.properties.state)}`),
    });
    const group = L.featureGroup().addTo(map);
    group.getBounds = () => points.getBounds();

    function cluster(members) {
      const bounds = L.latLngBounds(members.map((m) => m.getLatLng()));
      const size = members.length < 10 ? 30 : members.length < 100 ? 36 : 42;
      const icon = L.divIcon({ className: "asset-cluster", html: `<span>${members.length}</span>`, iconSize: [size, size] });
      return L.marker(bounds.getCenter(), { icon: icon, title: `${members.length} assets: click to zoom in`, alt: `${members.length} assets` })
        .on("click", () => map.fitBounds(bounds, { padding: [40, 40], maxZoom: CLUSTER_UNTIL_ZOOM }));
    }

    function redraw() {
      group.clearLayers();
      const zoom = map.getZoom();
      const cells = new Map();
      points.eachLayer((marker) => {
        const p = map.project(marker.getLatLng(), zoom);
        const key = zoom >= CLUSTER_UNTIL_ZOOM ? L.stamp(marker) : `${Math.floor(p.x / CLUSTER_CELL_PX)}:${Math.floor(p.y / CLUSTER_CELL_PX)}`;
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push(marker);
      });
      cells.forEach((members) => group.addLayer(members.length === 1 ? members[0] : cluster(members)));
    }

    map.on("zoomend", redraw);
    redraw();
    return group;
  }

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? cookie.split("=")[1] : "";
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method: method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? {} : await response.json();
    if (!response.ok) {
      const error = data.error || {};
      const fields = Object.entries(error.fields || {}).map(([k, v]) => `${k}: ${v.join(" ")}`);
      throw new Error(fields.length ? fields.join("\n") : error.message || `Request failed (${response.status})`);
    }
    return data;
  }

  /* Loading (%) -> colour: grey unknown, green below 80 %, amber to 100 %, red above (issue 11). */
  function loadingColour(value) {
    if (value === null || value === undefined) return "#555";
    return value > 100 ? STATUS_COLOURS.congested : value > 80 ? STATUS_COLOURS.watch : STATUS_COLOURS.normal;
  }

  function voltageColour(value) {
    if (value === null || value === undefined) return "#333";
    return value < 0.95 || value > 1.05 ? STATUS_COLOURS.congested : "#333";
  }

  function networkPopup(p) {
    if (p.kind === "bus") return `Bus ${escapeHtml(p.index)} · ${escapeHtml(p.name)}${p.voltage_pu != null ? `<br>${escapeHtml(p.voltage_pu)} p.u.` : ""}`;
    const what = p.kind === "trafo" ? "Transformer" : "Line";
    return `${what} ${escapeHtml(p.index)} · ${escapeHtml(p.name)}${p.loading_percent != null ? `<br>loading ${escapeHtml(p.loading_percent)} %` : ""}`;
  }

  const LOADING_LEGEND = [
    [STATUS_COLOURS.normal, "up to 80 %"], [STATUS_COLOURS.watch, "80–100 %"], [STATUS_COLOURS.congested, "over 100 %"], ["#555", "no result"],
  ];

  /* A small key in the map's corner: what the line colours mean. */
  function addLoadingLegend(map) {
    const legend = L.control({ position: "bottomright" });
    legend.onAdd = () => {
      const box = L.DomUtil.create("div", "map-legend");
      box.dataset.testid = "network-legend";
      L.DomUtil.create("strong", "", box).textContent = "Line loading";
      LOADING_LEGEND.forEach(([colour, text]) => {
        const row = L.DomUtil.create("div", "", box);
        L.DomUtil.create("span", "map-legend-line", row).style.background = colour;
        row.append(text);
      });
      return box;
    };
    legend.addTo(map);
  }

  /* The DSO's network: lines coloured by loading (with a legend), buses, transformers (squares); returns the layer. */
  function addNetwork(map, geojson) {
    addLoadingLegend(map);
    const layer = L.geoJSON(geojson, {
      style: (f) => ({ color: loadingColour(f.properties.loading_percent), weight: 3, opacity: 0.9 }),
      pointToLayer: (f, latlng) => f.properties.kind === "trafo"
        ? L.marker(latlng, { icon: L.divIcon({ className: "network-trafo", html: "", iconSize: [14, 14] }) })
        : L.circleMarker(latlng, { radius: 3, color: voltageColour(f.properties.voltage_pu), weight: 1, fillColor: "#fff", fillOpacity: 1 }),
      onEachFeature: (f, l) => l.bindPopup(networkPopup(f.properties)),
    });
    layer.addTo(map);
    return layer;
  }

  window.FlexMap = { createMap, addZones, labelZone, addAssets, addNetwork, loadingColour, api, escapeHtml, STATUS_COLOURS };
})();
