/* A congestion forecast: the network map (lines coloured by loading in the chosen PTU) and the zone x PTU heat
   strip; clicking a PTU or moving the slider re-colours the map. Data come from json_script blocks. */
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("map-settings").textContent);
  const zones = JSON.parse(document.getElementById("zones-geojson").textContent);
  const network = JSON.parse(document.getElementById("network-geojson").textContent);
  const series = JSON.parse(document.getElementById("forecast-series").textContent);
  const map = FlexMap.createMap("forecast-map", settings);
  const zoneLayer = FlexMap.addZones(map, zones);
  const lineLoading = {};
  series.line_index.forEach((line, n) => { lineLoading[line] = series.line_loading_percent[n]; });
  const trafoLoading = {};
  series.trafo_index.forEach((trafo, n) => { trafoLoading[trafo] = series.trafo_loading_percent[n]; });
  const layer = FlexMap.addNetwork(map, network);
  const slider = document.getElementById("ptu-slider");
  const label = document.getElementById("ptu-label");

  function show(ptu) {
    layer.eachLayer((l) => {
      const p = l.feature.properties;
      if (p.kind === "line" && lineLoading[p.index]) {
        p.loading_percent = lineLoading[p.index][ptu];
        l.setStyle({ color: FlexMap.loadingColour(p.loading_percent) });
        l.setPopupContent(`Line ${p.index} · ${FlexMap.escapeHtml(p.name)}<br>loading ${p.loading_percent} %`);
      }
      if (p.kind === "trafo" && trafoLoading[p.index]) {
        p.loading_percent = trafoLoading[p.index][ptu];
        l.setPopupContent(`Transformer ${p.index} · ${FlexMap.escapeHtml(p.name)}<br>loading ${p.loading_percent} %`);
      }
    });
    zoneLayer.eachLayer((l) => {
      const states = series.zone_states[String(l.feature.properties.id)];
      if (!states) return;
      const colour = FlexMap.STATUS_COLOURS[["normal", "watch", "congested"][Number(states[ptu])]];
      l.setStyle({ color: colour, fillColor: colour });
    });
    document.querySelectorAll(".heat-strip td.cell").forEach((cell) => {
      cell.classList.toggle("selected", Number(cell.dataset.ptu) === ptu);
    });
    slider.value = ptu;
    label.textContent = series.ptu_labels[ptu];
  }

  slider.addEventListener("input", () => show(Number(slider.value)));
  document.querySelectorAll(".heat-strip td.cell").forEach((cell) => {
    cell.addEventListener("click", () => show(Number(cell.dataset.ptu)));
  });
  show(Number(slider.value));
})();
