/**
 * The status page (`GET /` on the status endpoint): one self-contained HTML document, no external
 * assets: readiness, the `tophosts` table, charts of the last minutes (inline SVG), the last copies
 * with their state and links to `/track/<id>`. Refreshes itself every 10 s. Pure: HTML from the
 * endpoint's JSON; every value is escaped. Imports status siblings only.
 */
import type { Readiness } from './health';
import type { RatePoint } from './rates';
import type { DestinationJson, StatusJson } from './status-json';
import type { CopyRecord } from './tracker';
import { formatUptime } from './format';

export interface StatusPageInput {
  status: StatusJson;
  readiness: Readiness;
  points: readonly RatePoint[];
  /** Newest first. */
  recent: readonly CopyRecord[];
  /** Seconds between samples, for the chart captions. */
  intervalSeconds: number;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const COLUMNS: readonly [string, keyof DestinationJson][] = [
  ['active rcpts', 'activeRecipients'], ['conn out', 'connectionsOut'], ['delivered', 'delivered'],
  ['soft bounced', 'softBounced'], ['hard bounced', 'hardBounced'], ['dropped', 'dropped'], ['queue bytes', 'queuedBytes'],
];

function num(n: number): string {
  return n.toLocaleString('en-US');
}

function rate(n: number): string {
  return n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n === 0 ? '0' : n.toFixed(2);
}

function tophosts(status: StatusJson): string {
  const rows = [status.queue, ...status.domains].map((d, i) => {
    const cells = COLUMNS.map(([, f]) => {
      const v = d[f] as number;
      const warn = (f === 'dropped' || f === 'hardBounced') && v > 0 ? ' class="bad"' : '';
      return `<td data-field="${f}"${warn}>${num(v)}</td>`;
    }).join('');
    return `<tr${i === 0 ? ' class="total"' : ''} data-destination="${escapeHtml(d.destination)}"><th scope="row">${escapeHtml(d.destination)}</th>${cells}</tr>`;
  });
  return `<table id="tophosts"><thead><tr><th>destination</th>${COLUMNS.map(([h]) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** A small line chart (inline SVG) of one series, with its latest value and peak in the caption. */
function chart(id: string, title: string, unit: string, values: readonly number[], color: string, intervalSeconds: number, count = false): string {
  const fmt = count ? (v: number) => num(Math.round(v)) : rate;
  const w = 260;
  const h = 56;
  const max = Math.max(...values, 0);
  const top = max > 0 ? max : 1;
  // One point draws as a flat line across the chart.
  const shown = values.length === 1 ? [values[0]!, values[0]!] : values;
  const n = shown.length;
  const x = (i: number) => (n <= 1 ? w : (i / (n - 1)) * w);
  const y = (v: number) => h - 2 - (v / top) * (h - 6);
  const pts = shown.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const body = n === 0
    ? `<text x="${w / 2}" y="${h / 2 + 4}" text-anchor="middle" class="empty">collecting samples…</text>`
    : `<polygon points="0,${h} ${pts} ${w},${h}" fill="${color}" fill-opacity="0.15"/><polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
  const last = n === 0 ? '–' : fmt(shown[n - 1]!);
  const minutes = Math.max(1, Math.round((values.length * intervalSeconds) / 60));
  return `<figure class="chart" id="${id}"><figcaption><span>${title}</span><b data-latest>${last}</b> <small>${unit}</small></figcaption>` +
    `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${title}, last ${minutes} min">${body}</svg>` +
    `<div class="axis"><span>−${minutes} min</span><span>peak ${fmt(max)}</span><span>now</span></div></figure>`;
}

const STATE_CLASS: Record<string, string> = {
  delivered: 'ok', queued: 'wait', delivering: 'wait', retrying: 'warn', hard_bounce: 'bad', dropped: 'bad',
};

function recentTable(recent: readonly CopyRecord[]): string {
  if (recent.length === 0) return '<p class="none">No journal copies yet.</p>';
  const rows = recent.map((r) => {
    const last = r.events[r.events.length - 1];
    const at = last ? new Date(last.at).toISOString().replace('T', ' ').slice(0, 19) : '';
    const cls = STATE_CLASS[r.state] ?? 'wait';
    return `<tr data-copy="${escapeHtml(r.copyId)}"><td class="mono"><a href="/track/${encodeURIComponent(r.copyId)}">${escapeHtml(r.copyId)}</a></td>` +
      `<td><span class="pill ${cls}">${escapeHtml(r.state.replace('_', ' '))}</span></td>` +
      `<td class="mono">${escapeHtml(at)}</td><td>${escapeHtml(r.intakeAddress)}</td>` +
      `<td class="mono msgid" title="${escapeHtml(r.messageId)}">${escapeHtml(r.messageId)}</td>` +
      `<td class="detail" title="${escapeHtml(last?.detail ?? '')}">${escapeHtml(last?.detail ?? '')}</td></tr>`;
  });
  return `<table id="recent"><thead><tr><th>copy</th><th>state</th><th>last event (UTC)</th><th>intake</th><th>Message-ID</th><th>detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const CSS = `
:root{--bg:#f4f6f8;--card:#fff;--ink:#1d2733;--mute:#6b7785;--line:#dde3ea;--ok:#1f8a4c;--warn:#b7791f;--bad:#c53030;--acc:#2b6cb0}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{background:#1d2733;color:#fff;padding:14px 24px;display:flex;align-items:center;gap:16px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}header .meta{color:#b8c2cc;font-size:13px}
.badge{margin-left:auto;padding:4px 12px;border-radius:14px;font-weight:600;font-size:13px}
.badge.ok{background:#1f8a4c}.badge.bad{background:#c53030}
main{padding:18px 24px;max-width:1280px}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:14px 16px;margin-bottom:16px}
h2{font-size:14px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute)}
.facts{display:flex;gap:28px;flex-wrap:wrap;color:var(--mute)}.facts b{color:var(--ink);font-weight:600}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{font-size:12px;color:var(--mute);font-weight:600}
tr.total th,tr.total td{font-weight:600;background:#f8fafc}
td.bad{color:var(--bad);font-weight:600}
#recent td,#recent th{text-align:left}#recent td.msgid,#recent td.detail{max-width:260px;overflow:hidden;text-overflow:ellipsis}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
a{color:var(--acc);text-decoration:none}a:hover{text-decoration:underline}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.pill.ok{background:var(--ok)}.pill.wait{background:#718096}.pill.warn{background:var(--warn)}.pill.bad{background:var(--bad)}
.charts{display:flex;gap:16px;flex-wrap:wrap}
.chart{flex:1 1 230px;margin:0;border:1px solid var(--line);border-radius:6px;padding:8px 10px;background:#fbfcfd}
.chart figcaption{display:flex;gap:6px;align-items:baseline;font-size:13px}.chart figcaption span{flex:1;color:var(--mute)}
.chart b{font-size:18px}.chart small{color:var(--mute)}.chart svg{display:block;margin-top:4px;width:100%;height:56px}
.chart .empty{fill:var(--mute);font-size:11px}
.axis{display:flex;justify-content:space-between;font-size:11px;color:var(--mute)}
.none{color:var(--mute)}footer{color:var(--mute);font-size:12px;padding:0 24px 18px}
`;

// Refresh in place every 10 s; on failure keep the page and say so in the footer.
const SCRIPT = `
setInterval(function(){fetch('/',{cache:'no-store'}).then(function(r){return r.text()}).then(function(t){
var d=new DOMParser().parseFromString(t,'text/html');document.body.innerHTML=d.body.innerHTML;
}).catch(function(){var f=document.getElementById('updated');if(f)f.textContent='endpoint not answering; showing the last data';});},10000);
`;

export function renderStatusPage(input: StatusPageInput): string {
  const { status, readiness, points } = input;
  const m = status.milter;
  const charts = [
    chart('chart-messages', 'messages seen', '/s', points.map((p) => p.messages), '#2b6cb0', input.intervalSeconds),
    chart('chart-delivered', 'copies delivered', '/s', points.map((p) => p.delivered), '#1f8a4c', input.intervalSeconds),
    chart('chart-failed', 'hard bounced + dropped', '/s', points.map((p) => p.bounced + p.dropped), '#c53030', input.intervalSeconds),
    chart('chart-queued', 'copies queued', 'now', points.map((p) => p.queued), '#b7791f', input.intervalSeconds, true),
  ].join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tdc-milter status</title><style>${CSS}</style></head>
<body>
<header><h1>tdc-milter ${escapeHtml(status.version)}</h1>
<span class="meta">pid ${status.pid} · up ${formatUptime(status.uptimeSeconds)} · milter ${escapeHtml(status.milterListen)}</span>
<span id="readiness" class="badge ${readiness.ready ? 'ok' : 'bad'}" title="${escapeHtml(readiness.reason)}">${readiness.ready ? 'ready' : 'not ready'}</span></header>
<main>
${readiness.ready ? '' : `<section id="not-ready"><h2>Not ready</h2><p>${escapeHtml(readiness.reason)}</p></section>`}
<section><h2>Milter</h2><div class="facts" id="facts">
<span>journaling <b>${status.journaling ? 'on' : 'off'}</b></span>
<span>global intake <b>${escapeHtml(status.intakeAddress || '(none)')}</b></span>
<span>sessions <b data-field="activeSessions">${num(m.activeSessions)}</b></span>
<span>connections <b data-field="connectionsTotal">${num(m.connectionsTotal)}</b></span>
<span>messages <b data-field="messagesTotal">${num(m.messagesTotal)}</b></span>
<span>protocol errors <b data-field="protocolErrors">${num(m.protocolErrors)}</b></span>
</div></section>
<section><h2>Destinations (tophosts)</h2>${tophosts(status)}</section>
<section><h2>Last minutes</h2><div class="charts">${charts}</div></section>
<section><h2>Last journal copies</h2>${recentTable(input.recent)}</section>
</main>
<footer>as of <span id="as-of">${escapeHtml(status.now)}</span> · <span id="updated">refreshes every 10 s</span> · <a href="/status">/status</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></footer>
<script>${SCRIPT}</script>
</body></html>
`;
}
