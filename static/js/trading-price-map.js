/* A network-aware session's D-LMP map: buses coloured by their D-LMP in the chosen PTU (one colour scale over the
   day), lines by loading after clearing, binding lines purple and thick; the slider picks the PTU (local time).
   Data come from json_script blocks (map-settings, network-geojson, price-map-data). */
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("map-settings").textContent);
  const network = JSON.parse(document.getElementById("network-geojson").textContent);
  const data = JSON.parse(document.getElementById("price-map-data").textContent);
  const BINDING = "#8e24aa";
  const RAMP = [[44, 123, 182], [255, 255, 191], [215, 25, 28]];
  const busRow = {};
  data.buses.forEach((bus, n) => { busRow[bus] = n; });
  const branchRow = {};
  data.branches.forEach(([kind, index], n) => { branchRow[`${kind}:${index}`] = n; });

  /* D-LMP -> colour on the day's range: blue (lowest) through pale yellow to red (highest). */
  function priceColour(value) {
    if (value === null || value === undefined) return "#9e9e9e";
    const span = data.high - data.low;
    const x = span > 0 ? (value - data.low) / span : 0.5;
    const [a, b, f] = x < 0.5 ? [RAMP[0], RAMP[1], x * 2] : [RAMP[1], RAMP[2], (x - 0.5) * 2];
    const rgb = a.map((c, i) => Math.round(c + (b[i] - c) * f));
    return `rgb(${rgb.join(", ")})`;
  }

  const map = FlexMap.createMap("price-map", settings);
  map.options.zoomSnap = 0.25; // fit a feeder-sized grid tightly
  const layer = L.geoJSON(network, {
    filter: (f) => f.properties.kind !== "bus" || f.properties.index in busRow,
    // GeoJSON applies `style` to the bus circles too: a thin white ring there, so the D-LMP colour shows.
    style: (f) => (f.properties.kind === "bus" ? { color: "#fff", weight: 1, opacity: 1 } : { color: "#555", weight: 4, opacity: 0.9 }),
    pointToLayer: (f, latlng) => f.properties.kind === "trafo"
      ? L.marker(latlng, { icon: L.divIcon({ className: "network-trafo", html: "", iconSize: [14, 14] }) })
      : L.circleMarker(latlng, { radius: 6, fillOpacity: 1, className: "dlmp-bus" }),
    onEachFeature: (f, l) => l.bindPopup(""),
  }).addTo(map);
  if (network.features.length) map.fitBounds(layer.getBounds(), { padding: [20, 20], animate: false });
  layer.eachLayer((l) => { if (l.feature.properties.kind === "bus" && l.bringToFront) l.bringToFront(); });

  const slider = document.getElementById("price-ptu-slider");
  const label = document.getElementById("price-ptu-label");
  const bindingTag = document.getElementById("price-ptu-binding");

  function show(ptu) {
    const binding = new Set(data.binding[String(ptu)] || []);
    layer.eachLayer((l) => {
      const p = l.feature.properties;
      const name = FlexMap.escapeHtml(p.name);
      if (p.kind === "bus") {
        const price = data.dlmp[busRow[p.index]][ptu];
        l.setStyle({ fillColor: priceColour(price) });
        l.getElement() && l.getElement().setAttribute("data-dlmp", price === null ? "" : String(price));
        l.setPopupContent(`Bus ${p.index} · ${name}<br>D-LMP ${price === null ? "–" : price.toFixed(2) + " EUR/MWh"}`);
        return;
      }
      const key = `${p.kind}:${p.index}`;
      const row = branchRow[key];
      const loading = row === undefined ? null : data.loading_after_percent[row][ptu];
      const bound = binding.has(key);
      if (p.kind === "line") {
        l.setStyle({ color: bound ? BINDING : FlexMap.loadingColour(loading), weight: bound ? 9 : 4 });
        if (bound) l.bringToFront(); // over the buses at its ends, so a short line still shows
      }
      const what = p.kind === "trafo" ? "Transformer" : "Line";
      l.setPopupContent(`${what} ${p.index} · ${name}<br>loading after clearing ${loading === null ? "–" : loading + " %"}${bound ? "<br><strong>binding</strong>" : ""}`);
    });
    slider.value = ptu;
    label.textContent = data.ptu_labels[ptu];
    bindingTag.textContent = binding.size ? `binding: ${[...binding].join(", ").replaceAll(":", " ")}` : "no binding line";
  }

  slider.addEventListener("input", () => show(Number(slider.value)));
  show(Number(slider.value));
})();
