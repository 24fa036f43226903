/* flexmarket maps: Leaflet (from django-leaflet's static files), zones coloured by traffic light. */
(function () {
  "use strict";
  const STATUS_COLOURS = { normal: "#2e8b57", watch: "#d49b00", congested: "#c0392b" };
  const ASSET_COLOURS = { approved: "#2e8b57", pending: "#d49b00", rejected: "#c0392b", suspended: "#7a7a7a" };

  function createMap(elementId, settings) {
    const map = L.map(elementId).setView(settings.center, settings.zoom);
    if (settings.tileUrl) {
      L.tileLayer(settings.tileUrl, { attribution: settings.attribution, maxZoom: 19 }).addTo(map);
    }
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

  function addZones(map, geojson, options) {
    const layer = L.geoJSON(geojson, Object.assign({ style: zoneStyle, onEachFeature: (f, l) => l.bindPopup(zonePopup(f)) }, options || {}));
    layer.addTo(map);
    if (geojson.features && geojson.features.length) {
      map.fitBounds(layer.getBounds(), { padding: [20, 20] });
    }
    return layer;
  }

  function addAssets(map, geojson) {
    return L.geoJSON(geojson, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 6, color: "#222", weight: 1, fillColor: ASSET_COLOURS[f.properties.state] || "#485fc7", fillOpacity: 0.9 }),
      onEachFeature: (f, l) => l.bindPopup(`<a href="/grid/assets/${encodeURIComponent(f.properties.id)}/">${escapeHtml(f.properties.name)}</a><br>${escapeHtml(f.properties.type)} · ${escapeHtml(f.properties.state)}`),
    }).addTo(map);
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

  /* The DSO's network: lines coloured by loading, buses, transformers (squares); returns the layer. */
  function addNetwork(map, geojson) {
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

  window.FlexMap = { createMap, addZones, addAssets, addNetwork, loadingColour, api, escapeHtml, STATUS_COLOURS };
})();
