// Plotly figures and gate-closure countdowns for trading and settlement pages (no inline scripts: CSP).
// A chart is an element with data-figure="<id of a json_script element holding {data, layout}>".
(function () {
  for (const target of document.querySelectorAll("[data-figure]")) {
    const source = document.getElementById(target.dataset.figure);
    if (source && window.Plotly) {
      const figure = JSON.parse(source.textContent);
      Plotly.newPlot(target, figure.data, figure.layout, { responsive: true, displaylogo: false });
    }
  }
  const countdown = document.getElementById("countdown");
  if (countdown) {
    const gate = new Date(countdown.dataset.gate);
    const tick = () => {
      const s = Math.max(0, Math.floor((gate - new Date()) / 1000));
      countdown.textContent = s ? `closes in ${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m ${s % 60}s` : "gate closed";
    };
    tick();
    setInterval(tick, 1000);
  }
})();
