/* A network-aware session's price map: buses coloured by their D-LMP, or their Q-LMP (the toggle), in the chosen
   PTU (one colour scale per price over the day), lines by loading after clearing, binding lines purple and thick;
   the slider picks the PTU (local time). The toggle also switches the section's per-bus table.
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
  const KINDS = {
    dlmp: { name: "D-LMP", unit: "EUR/MWh", values: data.dlmp, low: data.low, high: data.high },
    qlmp: { name: "Q-LMP", unit: "EUR/Mvarh", values: data.qlmp, low: data.q_low, high: data.q_high },
  };
  let kind = KINDS.dlmp;
  const branchRow = {};
  data.branches.forEach(([kind, index], n) => { branchRow[`${kind}:${index}`] = n; });

  /* A price -> colour on the day's range of the price shown: blue (lowest) through pale yellow to red (highest). */
  function priceColour(value) {
    if (value === null || value === undefined) return "#9e9e9e";
    const span = kind.high - kind.low;
    const x = span > 0 ? (value - kind.low) / span : 0.5;
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
        const price = kind.values[busRow[p.index]][ptu];
        l.setStyle({ fillColor: priceColour(price) });
        const element = l.getElement && l.getElement();
        if (element) {
          element.setAttribute("data-bus", String(p.index));
          element.setAttribute("data-price", price === null ? "" : String(price));
        }
        l.setPopupContent(`Bus ${p.index} · ${name}<br>${kind.name} ${price === null ? "–" : price.toFixed(2) + " " + kind.unit}`);
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

  /* D-LMP or Q-LMP: the map's colours and legend, the heading, and which per-bus table the section shows. */
  function choose(name) {
    kind = KINDS[name];
    document.querySelectorAll("[data-price-kind]").forEach((button) => {
      const on = button.dataset.priceKind === name;
      button.classList.toggle("is-link", on);
      button.classList.toggle("is-selected", on);
      button.setAttribute("aria-pressed", String(on));
    });
    document.querySelectorAll("[data-price-panel]").forEach((panel) => {
      panel.classList.toggle("is-hidden", panel.dataset.pricePanel !== name);
    });
    document.querySelectorAll("[data-price-name]").forEach((el) => { el.textContent = kind.name; });
    document.querySelectorAll("[data-price-unit]").forEach((el) => { el.textContent = kind.unit; });
    document.getElementById("price-low").textContent = kind.low.toFixed(2);
    document.getElementById("price-high").textContent = kind.high.toFixed(2);
    show(Number(slider.value));
  }

  slider.addEventListener("input", () => show(Number(slider.value)));
  document.querySelectorAll("[data-price-kind]").forEach((button) => {
    button.addEventListener("click", () => choose(button.dataset.priceKind));
  });
  show(Number(slider.value));
})();
