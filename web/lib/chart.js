// uPlot (vendored under /vendor/uplot), loaded once on the first page that draws a chart, and
// the axis style every chart shares: #a3a3a3 labels in JetBrains Mono on the #333 grid.
export async function loadUplot() {
  if (window.uPlot) return window.uPlot;
  if (!document.querySelector('link[data-uplot]')) {
    const link = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: import.meta.resolve('/vendor/uplot/uPlot.min.css') });
    link.dataset.uplot = '';
    document.head.append(link);
  }
  await new Promise((resolve, reject) => {
    const s = Object.assign(document.createElement('script'), { src: import.meta.resolve('/vendor/uplot/uPlot.iife.min.js') });
    s.onload = resolve;
    s.onerror = () => reject(new Error('cannot load uPlot'));
    document.head.append(s);
  });
  return window.uPlot;
}

export const AXIS = {
  stroke: '#a3a3a3', font: '11px "JetBrains Mono", monospace',
  grid: { stroke: '#333', width: 1 }, ticks: { stroke: '#333', width: 1 },
};

/**
 * Draws lines (xs: Unix seconds; lines: [{label, ys, stroke, dash?}]) into el with uPlot, 200 px
 * high, resizing with el, with a legend when there is more than one; yFormat labels the y axis.
 * Returns the cleanup (stops the observer, destroys the plot).
 */
export function linesChart(el, xs, lines, { yFormat = (v) => String(v), ySize = 56 } = {}) {
  let plot = null;
  let ro = null;
  loadUplot().then((uPlot) => {
    if (!el.isConnected) return;
    plot = new uPlot({
      width: Math.max(200, el.clientWidth), height: 200, legend: { show: lines.length > 1 }, cursor: { show: true, points: { show: false } },
      scales: { x: { time: true } },
      axes: [{ ...AXIS }, { ...AXIS, values: (u, v) => v.map(yFormat), size: ySize }],
      series: [{}, ...lines.map(({ label, stroke = '#ccff00', dash }) => ({ label, stroke, width: 2, dash, points: { show: false }, value: (u, v) => (v === null || v === undefined ? '—' : yFormat(v)) }))],
    }, [xs, ...lines.map((l) => l.ys)], el);
    ro = new ResizeObserver(() => { if (plot && Math.abs(plot.width - el.clientWidth) > 8) plot.setSize({ width: Math.max(200, el.clientWidth), height: 200 }); });
    ro.observe(el);
  }).catch((err) => { el.textContent = err.message; });
  return () => { ro?.disconnect(); plot?.destroy(); };
}

/** One line: linesChart with a single series and no legend. */
export function lineChart(el, xs, ys, { label, stroke = '#ccff00', yFormat, ySize } = {}) {
  return linesChart(el, xs, [{ label, ys, stroke }], { yFormat, ySize });
}
