/* Read-only zone outline on the GridLocation admin change page (data from json_script islands). */
(function () {
  "use strict";
  function init() {
    const element = document.getElementById("zone-outline");
    if (!element) return;
    const map = L.map("zone-outline");
    const tiles = JSON.parse(document.getElementById("zone-tile-url").textContent);
    if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
    const layer = L.geoJSON(JSON.parse(document.getElementById("zone-geometry").textContent)).addTo(map);
    map.fitBounds(layer.getBounds(), { padding: [20, 20] });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
