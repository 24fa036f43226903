/* The DSO's bus mapping page: zones and the network (bus numbers in popups). */
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("map-settings").textContent);
  const map = FlexMap.createMap("mapping-map", settings);
  FlexMap.addZones(map, JSON.parse(document.getElementById("zones-geojson").textContent));
  FlexMap.addNetwork(map, JSON.parse(document.getElementById("network-geojson").textContent));
})();
