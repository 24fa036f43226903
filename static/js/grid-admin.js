/* Read-only zone outline on the GridLocation admin change page (data from json_script islands). */
(function () {
  "use strict";
  function init() {
    const element = document.getElementById("zone-outline");
    if (!element) return;
    // Tiles, or the offline base when there are none (grid-map.js).
    const map = FlexMap.createMap("zone-outline", JSON.parse(document.getElementById("zone-map-settings").textContent));
    const layer = L.geoJSON(JSON.parse(document.getElementById("zone-geometry").textContent)).addTo(map);
    map.fitBounds(layer.getBounds(), { padding: [20, 20] });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
