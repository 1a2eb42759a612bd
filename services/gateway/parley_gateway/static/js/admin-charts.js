// The console's live charts: sockets and messages per minute per gateway, RPC latency and
// event lag (p50/p99 over the last minute), the broker's queue depths. Every gateway samples
// its own figures into the cache (GET /admin/stats reads them all); this refreshes every few
// seconds while the tab is open. Drawn with uPlot (npm, vendored under /static/vendor/uplot/,
// loaded only when the tab first opens). A "Now" table says the same in text.
import { api, describeError } from './api.js';
import { h } from './util.js';

const REFRESH_MS = 5000;
const PALETTE = ['#3a5bd9', '#c2410c', '#15803d', '#9333ea', '#0e7490', '#b91c1c', '#4d7c0f', '#a16207'];
const CHARTS = [
  { key: 'sockets', title: 'Connected sockets per gateway', unit: '' },
  { key: 'rate', title: 'Messages per minute per gateway', unit: '/min' },
  { key: 'rpc', title: 'RPC latency, p50 and p99 (ms)', unit: ' ms' },
  { key: 'lag', title: 'Event lag, p50 and p99 (ms)', unit: ' ms' },
  { key: 'queues', title: 'Broker queue depths (messages waiting)', unit: '' },
];

let uPlotReady = null;
let timer = null;
let panelEl = null;
const plots = {};
const queueHistory = []; // [{ts, depths}] since the tab was first opened

function loadUPlot() {
  if (!uPlotReady) {
    uPlotReady = new Promise((resolve, reject) => {
      const css = h('link', { rel: 'stylesheet', href: '/static/vendor/uplot/uPlot.min.css' });
      const script = h('script', { src: '/static/vendor/uplot/uPlot.iife.min.js' });
      script.addEventListener('load', () => resolve(window.uPlot));
      script.addEventListener('error', () => { uPlotReady = null; reject(new Error('The chart library did not load.')); });
      document.head.append(css, script);
    });
  }
  return uPlotReady;
}

export function buildCharts(panel) {
  panelEl = panel;
  panel.append(
    h('p', { id: 'admin-charts-status', class: 'muted-text admin-status', role: 'status' }),
    h('div', { class: 'admin-charts' }, ...CHARTS.map((c) => h('figure', { class: 'admin-chart', id: `admin-chart-${c.key}` },
      h('figcaption', {}, c.title), h('div', { class: 'admin-chart-plot', 'aria-hidden': 'true' }),
      h('ul', { class: 'admin-chart-key', 'aria-label': `${c.title}: series` })))),
    h('table', { id: 'admin-now', class: 'admin-table' }, h('caption', {}, 'Now'),
      h('thead', {}, h('tr', {}, ...['Gateway', 'Sockets', 'Messages/min', 'RPC p50', 'RPC p99', 'Lag p50', 'Lag p99']
        .map((t) => h('th', { scope: 'col' }, t)))), h('tbody')),
    h('table', { id: 'admin-queues', class: 'admin-table' }, h('caption', {}, 'Queues'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Queue'), h('th', { scope: 'col' }, 'Messages waiting'))),
      h('tbody')));
}

export function startCharts() {
  stopCharts();
  refresh();
  timer = setInterval(() => { if (panelEl && !panelEl.hidden && panelEl.isConnected) refresh(); else stopCharts(); }, REFRESH_MS);
}

export function stopCharts() {
  if (timer) clearInterval(timer);
  timer = null;
}

const ms = (v) => (v == null ? null : Math.round(v * 1000 * 10) / 10);

/** Samples of several gateways onto one time axis (5-second slots). */
function align(gateways, step) {
  const slot = (ts) => Math.round(ts / step) * step;
  const xs = [...new Set(Object.values(gateways).flat().map((s) => slot(s.ts)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const column = (samples, pick) => {
    const ys = new Array(xs.length).fill(null);
    samples.forEach((s, i) => { ys[index.get(slot(s.ts))] = pick(s, samples[i - 1]); });
    return ys;
  };
  return { xs, column };
}

function rate(s, prev) {
  if (!prev || s.ts <= prev.ts || s.messages < prev.messages) return null;
  return Math.round(((s.messages - prev.messages) / (s.ts - prev.ts)) * 60 * 10) / 10;
}

function datasets(stats) {
  const gw = stats.gateways || {};
  const names = Object.keys(gw);
  const { xs, column } = align(gw, stats.sample_seconds || 5);
  const series = (pickFor) => names.map((n) => column(gw[n], pickFor));
  const pct = (a, b) => names.flatMap((n) => [[`${n} p50`, column(gw[n], (s) => ms(s[a]))], [`${n} p99`, column(gw[n], (s) => ms(s[b]))]]);
  const queueNames = Object.keys(stats.queues || {});
  return {
    sockets: { xs, labels: names, ys: series((s) => s.sockets) },
    rate: { xs, labels: names, ys: series(rate) },
    rpc: { xs, labels: pct('rpc_p50', 'rpc_p99').map(([l]) => l), ys: pct('rpc_p50', 'rpc_p99').map(([, y]) => y) },
    lag: { xs, labels: pct('lag_p50', 'lag_p99').map(([l]) => l), ys: pct('lag_p50', 'lag_p99').map(([, y]) => y) },
    queues: { xs: queueHistory.map((q) => q.ts), labels: queueNames, ys: queueNames.map((n) => queueHistory.map((q) => q.depths[n] ?? null)) },
  };
}

function draw(uPlot, key, data) {
  const figure = document.getElementById(`admin-chart-${key}`);
  const box = figure.querySelector('.admin-chart-plot');
  const signature = data.labels.join('|');
  let plot = plots[key];
  if (plot && plot.signature !== signature) { plot.chart.destroy(); plot = null; }
  if (!plot) {
    const text = getComputedStyle(document.body).color;
    const grid = getComputedStyle(document.body).getPropertyValue('--border').trim() || '#ccc';
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const chart = new uPlot({
      width: Math.max(260, box.clientWidth || 420), height: 170, legend: { show: false },
      cursor: { show: false }, scales: { x: { time: true } }, axes: [axis, { ...axis, size: 50 }],
      series: [{}, ...data.labels.map((label, i) => ({
        label, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true,
        dash: label.endsWith('p99') ? [6, 4] : undefined,
      }))],
    }, [data.xs, ...data.ys], box);
    plot = { chart, signature };
    plots[key] = plot;
    figure.querySelector('.admin-chart-key').replaceChildren(...data.labels.map((label, i) => h('li', {},
      h('span', { class: 'admin-swatch', 'data-color': String(i % PALETTE.length) }), label)));
    for (const swatch of figure.querySelectorAll('.admin-swatch')) swatch.style.background = PALETTE[Number(swatch.dataset.color)];
  } else {
    plot.chart.setData([data.xs, ...data.ys]);
  }
}

function fmt(v, unit) { return v == null ? '–' : `${v}${unit}`; }

function fillTables(stats) {
  const rows = Object.entries(stats.gateways || {}).map(([name, samples]) => {
    const last = samples[samples.length - 1] || {};
    return h('tr', {}, h('td', {}, name), h('td', {}, String(last.sockets ?? '–')),
      h('td', {}, fmt(rate(last, samples[samples.length - 2]), '')),
      h('td', {}, fmt(ms(last.rpc_p50), ' ms')), h('td', {}, fmt(ms(last.rpc_p99), ' ms')),
      h('td', {}, fmt(ms(last.lag_p50), ' ms')), h('td', {}, fmt(ms(last.lag_p99), ' ms')));
  });
  document.querySelector('#admin-now tbody').replaceChildren(...rows);
  document.querySelector('#admin-queues tbody').replaceChildren(...Object.entries(stats.queues || {}).map(([name, depth]) =>
    h('tr', {}, h('td', {}, name), h('td', {}, depth == null ? 'no such queue' : String(depth)))));
}

async function refresh() {
  const status = document.getElementById('admin-charts-status');
  try {
    const [uPlot, stats] = await Promise.all([loadUPlot(), api('GET', '/admin/stats')]);
    queueHistory.push({ ts: Math.round(Date.now() / 1000), depths: stats.queues || {} });
    if (queueHistory.length > 60) queueHistory.shift();
    fillTables(stats);
    const data = datasets(stats);
    for (const c of CHARTS) draw(uPlot, c.key, data[c.key]);
    status.textContent = `Updated ${new Date().toLocaleTimeString()}; every ${REFRESH_MS / 1000} s.`;
  } catch (e) {
    status.textContent = describeError(e);
  }
}
