// D-prognosis chart editor: the chart follows the PTU inputs as they change; clicking a point focuses its input;
// "Fill" sets a range of PTUs at once. The form posts the inputs; the server validates (no inline script: CSP).
(function () {
  const target = document.getElementById("prognosis-chart");
  const source = document.getElementById("prognosis-chart-data");
  if (!target || !source || !window.Plotly) return;
  const figure = JSON.parse(source.textContent);
  const inputs = Array.from(document.querySelectorAll("input[data-ptu]"));
  const number = (text) => {
    const value = Number(String(text).trim());
    return String(text).trim() === "" || !Number.isFinite(value) ? null : value;
  };
  Plotly.newPlot(target, figure.data, figure.layout, { responsive: true, displaylogo: false });
  const redraw = () => {
    Plotly.restyle(target, { y: [inputs.map((input) => number(input.value))] }, [0]);
  };
  for (const input of inputs) {
    input.addEventListener("input", () => {
      input.classList.toggle("is-danger", input.value.trim() !== "" && number(input.value) === null);
      redraw();
    });
  }
  target.on("plotly_click", (event) => {
    const input = inputs[event.points[0].pointIndex];
    if (input) input.focus();
  });
  const tools = document.getElementById("fill-tools");
  tools.classList.remove("is-hidden");
  document.getElementById("fill-apply").addEventListener("click", () => {
    const from = Number(document.getElementById("fill-from").value);
    const to = Number(document.getElementById("fill-to").value);
    const kw = document.getElementById("fill-kw").value;
    for (const input of inputs) {
      const ptu = Number(input.dataset.ptu);
      if (ptu >= Math.min(from, to) && ptu <= Math.max(from, to)) input.value = kw;
    }
    redraw();
  });
})();
