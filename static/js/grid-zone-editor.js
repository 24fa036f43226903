/* The DSO's zone editor: draw polygons with Leaflet.draw, edit vertices, archive. Saves through the API. */
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("map-settings").textContent);
  const zones = JSON.parse(document.getElementById("zones-geojson").textContent);
  const editor = JSON.parse(document.getElementById("editor-settings").textContent);
  const map = FlexMap.createMap("zone-map", settings);
  const others = { type: "FeatureCollection", features: zones.features.filter((f) => f.properties.dso_id !== editor.ownDsoId || !editor.canEdit) };
  const own = { type: "FeatureCollection", features: zones.features.filter((f) => f.properties.dso_id === editor.ownDsoId && editor.canEdit) };
  FlexMap.addZones(map, others);
  const editable = new L.FeatureGroup().addTo(map);
  L.geoJSON(own, {
    style: (f) => ({ color: FlexMap.STATUS_COLOURS[f.properties.status], weight: 3, fillOpacity: 0.3 }),
    onEachFeature: (feature, layer) => {
      layer.zoneId = feature.properties.id;
      FlexMap.labelZone(feature, layer);
      layer.bindPopup(`<strong>${FlexMap.escapeHtml(feature.properties.name)}</strong><br>${FlexMap.escapeHtml(feature.properties.code)}<br>status: ${FlexMap.escapeHtml(feature.properties.status)}`);
      editable.addLayer(layer);
    },
  });
  const networkData = document.getElementById("network-geojson");
  if (networkData) FlexMap.addNetwork(map, JSON.parse(networkData.textContent));
  if (zones.features.length) {
    map.fitBounds(L.geoJSON(zones).getBounds(), { padding: [20, 20] });
  }
  if (!editor.canEdit) return;

  const form = document.getElementById("zone-form");
  const errorBox = document.getElementById("zone-errors");
  let pendingLayer = null;
  map.addControl(new L.Control.Draw({
    edit: { featureGroup: editable },
    draw: { polygon: { allowIntersection: false, showArea: true }, polyline: false, rectangle: true, circle: false, marker: false, circlemarker: false },
  }));

  map.on(L.Draw.Event.CREATED, (event) => {
    if (pendingLayer) map.removeLayer(pendingLayer);
    pendingLayer = event.layer.addTo(map);
    form.classList.remove("is-hidden");
    form.querySelector("[name=name]").focus();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!pendingLayer) return;
    const data = new FormData(form);
    errorBox.textContent = "";
    try {
      const zone = await FlexMap.api("POST", "/api/v1/grid-locations/", {
        name: data.get("name"), code: data.get("code"), voltage_level: data.get("voltage_level"), status: data.get("status"),
        geometry: pendingLayer.toGeoJSON().geometry,
      });
      window.location.href = `?saved=${zone.id}` + (zone.warnings && zone.warnings.length ? `&warning=${encodeURIComponent(zone.warnings.join(" "))}` : "");
    } catch (error) {
      errorBox.textContent = error.message;
    }
  });

  document.getElementById("zone-cancel").addEventListener("click", () => {
    if (pendingLayer) map.removeLayer(pendingLayer);
    pendingLayer = null;
    form.classList.add("is-hidden");
  });

  map.on(L.Draw.Event.EDITED, async (event) => {
    const failures = [];
    for (const layer of event.layers.getLayers()) {
      try { await FlexMap.api("PATCH", `/api/v1/grid-locations/${layer.zoneId}/`, { geometry: layer.toGeoJSON().geometry }); }
      catch (error) { failures.push(error.message); }
    }
    if (failures.length) { errorBox.textContent = failures.join("\n"); } else { window.location.reload(); }
  });

  map.on(L.Draw.Event.DELETED, async (event) => {
    for (const layer of event.layers.getLayers()) {
      await FlexMap.api("DELETE", `/api/v1/grid-locations/${layer.zoneId}/`);
    }
    window.location.reload();
  });

  document.querySelectorAll("[data-zone-status]").forEach((select) => {
    select.addEventListener("change", async () => {
      try { await FlexMap.api("PATCH", `/api/v1/grid-locations/${select.dataset.zoneStatus}/`, { status: select.value }); window.location.reload(); }
      catch (error) { errorBox.textContent = error.message; }
    });
  });
})();
