/* Grid pages: maps and charts set up from JSON data islands (no inline scripts). Needs grid-map.js. */
(function () {
  "use strict";

  function data(id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function once(id) {
    const element = document.getElementById(id);
    if (!element || element.dataset.ready) return null;
    element.dataset.ready = "1";
    return element;
  }

  /* The DSO's own network (lines coloured by the latest forecast's loading) where the page has one. */
  function network(map, id) {
    const geojson = data(id || "network-geojson");
    if (geojson) FlexMap.addNetwork(map, geojson);
  }

  function dsoPanel() {
    if (!once("dso-zone-map")) return;
    const map = FlexMap.createMap("dso-zone-map", data("dso-map-settings"));
    FlexMap.addZones(map, data("dso-zones"));
    network(map, "dso-network");
  }

  function espPanel() {
    if (!once("esp-asset-map")) return;
    const map = FlexMap.createMap("esp-asset-map", data("esp-map-settings"));
    FlexMap.addZones(map, data("esp-zones"));
    const assets = data("esp-assets");
    const layer = FlexMap.addAssets(map, assets);
    if (assets.features.length) map.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 14 });
  }

  function assetList() {
    if (!document.getElementById("assets-geojson") || !once("asset-map")) return;
    const map = FlexMap.createMap("asset-map", data("map-settings"));
    FlexMap.addZones(map, data("zones-geojson"));
    network(map);
    const assets = data("assets-geojson");
    const layer = FlexMap.addAssets(map, assets);
    if (assets.features.length) map.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 14 });
  }

  function assetDetail() {
    if (!document.getElementById("asset-point") || !once("asset-map")) return;
    const settings = data("map-settings");
    settings.center = data("asset-point");
    settings.zoom = 14;
    const map = FlexMap.createMap("asset-map", settings);
    FlexMap.addZones(map, data("zones-geojson") || { type: "FeatureCollection", features: [] });
    network(map);
    L.marker(settings.center).addTo(map);
  }

  function assetRegister() {
    if (!once("register-map")) return;
    const map = FlexMap.createMap("register-map", data("map-settings"));
    const zoneLayer = FlexMap.addZones(map, data("zones-geojson"), { interactive: false });
    const latitude = document.getElementById("id_latitude");
    const longitude = document.getElementById("id_longitude");
    let marker = null;
    function place(latlng) {
      latitude.value = latlng.lat.toFixed(6);
      longitude.value = latlng.lng.toFixed(6);
      if (marker) marker.setLatLng(latlng); else marker = L.marker(latlng).addTo(map);
      const hits = zoneLayer.getLayers().filter((l) => l.getBounds().contains(latlng));
      document.getElementById("zone-hint").textContent = hits.length
        ? `Inside zone: ${hits.map((l) => l.feature.properties.name).join(", ")}`
        : "Outside every zone";
    }
    map.on("click", (e) => place(e.latlng));
    const lat = parseFloat(latitude.value), lon = parseFloat(longitude.value);
    if (!isNaN(lat) && !isNaN(lon)) place(L.latLng(lat, lon));
  }

  function powerFlowChart() {
    if (!once("power-flow-chart")) return;
    const figure = data("chart-data");
    Plotly.newPlot("power-flow-chart", figure.data, figure.layout, { responsive: true, displaylogo: false });
  }

  function runZones() {
    if (!once("run-zone-map")) return;
    const map = FlexMap.createMap("run-zone-map", data("map-settings"));
    FlexMap.addZones(map, data("zones-geojson"));
    network(map);
  }

  function init() {
    if (window.FlexMap) { runZones(); dsoPanel(); espPanel(); assetList(); assetDetail(); assetRegister(); }
    if (window.Plotly) powerFlowChart();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
