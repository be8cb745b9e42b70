/* The relation card page (daemon/ui/index.html): plain JavaScript, no
 * framework. Reads, on the server that served it: /v1/relations (the
 * configuration), /v1/stats and /v1/edges (a profile's side), the trigger
 * stream /v1/triggers/stream (read with fetch, so that it carries the token
 * as the other reads do), and /readyz with /metrics (health, every 5 s).
 * With http.token set, a 401 asks for the token once; it is kept in
 * sessionStorage (this tab only). Numbers are shown as the server wrote
 * them (the JSON's own text), as relationctl prints them. */
'use strict';
(function () {
  const TOKEN_KEY = 'relationd.token';
  const MAX_TRIGGERS = 100;
  const $ = (id) => document.getElementById(id);
  let relations = [];
  let card = null;         /* the side shown: {rel, side, profile, cursors, page} */
  let streaming = false;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /* JSON with every number kept as its source text (relationctl's form). */
  function parse(text) {
    return JSON.parse(text, function (key, value, context) {
      if (typeof value !== 'number') return value;
      return context && typeof context.source === 'string' ? context.source : String(value);
    });
  }

  function authHeaders() {
    const t = sessionStorage.getItem(TOKEN_KEY);
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  class Unauthorized extends Error {}

  function askToken(message) {
    $('token-form').hidden = false;
    $('token-error').textContent = message || '';
    $('token').focus();
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
    const text = await r.text();
    if (r.status === 401) {
      askToken(sessionStorage.getItem(TOKEN_KEY) ? 'that token was refused' : '');
      throw new Unauthorized('the token is required');
    }
    let body;
    try {
      body = parse(text);
    } catch (e) {
      throw new Error(path + ': HTTP ' + r.status);
    }
    if (!r.ok) throw new Error(body.error || path + ': HTTP ' + r.status);
    return body;
  }

  function segment(s) { return encodeURIComponent(s); }

  /* ---- relations ---- */

  function thresholdText(t) {
    const what = t.stat + (t.property ? '(' + t.property + ')' : '');
    return t.direction + ' ' + what + ' ≥ ' + t.value + (t.name ? ' “' + t.name + '”' : '');
  }

  function showRelations() {
    const box = $('relations');
    box.replaceChildren();
    const select = $('relation');
    const chosen = select.value;
    select.replaceChildren();
    for (const r of relations) {
      select.append(el('option', { value: r.short }, r.short + (r.name ? ' — ' + r.name : '')));
      const props = el('tbody');
      for (const p of r.properties) {
        props.append(el('tr', { 'data-property': p.short },
          el('td', {}, el('code', {}, p.short)), el('td', {}, p.name || ''),
          el('td', {}, p.type), el('td', {}, p.save_amount ? 'total' : ''),
          el('td', {}, p.save_top ? 'top ' + p.save_top.limit + ' ' + p.save_top.order : '')));
      }
      const ths = el('ul');
      for (const t of r.thresholds) ths.append(el('li', {}, thresholdText(t)));
      if (!r.thresholds.length) ths.append(el('li', {}, 'none'));
      box.append(el('div', { class: 'relation', 'data-relation': r.short },
        el('h3', {}, el('code', {}, r.short), ' ', r.name || '', ' — ', r.database_a, ' → ',
           r.database_b),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'property'),
          el('th', {}, 'name'), el('th', {}, 'type'), el('th', {}, 'saves'), el('th', {}, 'top'))),
          props),
        el('p', {}, 'Thresholds:'), ths));
    }
    if (chosen) select.value = chosen;
  }

  async function loadRelations() {
    relations = (await getJSON('/v1/relations')).relations;
    showRelations();
  }

  /* ---- a profile's side ---- */

  function barChart(prop, top) {
    const rowH = 22, labelW = 120, width = 360, barW = width - labelW - 70;
    const max = Math.max(...top.map((e) => Math.abs(parseFloat(e.value))), 0) || 1;
    const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + Math.max(rowH * top.length, rowH),
      role: 'img', 'aria-label': 'top of ' + prop });
    top.forEach((e, i) => {
      const y = i * rowH;
      const g = svg('g', { 'data-profile': e.profile_id, 'data-value': e.value });
      g.append(svg('text', { x: 0, y: y + 15 }, e.profile_id));
      g.append(svg('rect', { x: labelW, y: y + 4,
        width: Math.max(1, barW * Math.abs(parseFloat(e.value)) / max), height: rowH - 8 }));
      g.append(svg('text', { x: width - 4, y: y + 15, 'text-anchor': 'end', class: 'value' },
        e.value));
      chart.append(g);
    });
    if (!top.length) chart.append(svg('text', { x: 0, y: 15 }, 'empty'));
    return el('div', { class: 'top', 'data-property': prop }, el('h3', {}, 'top ' + prop), chart);
  }

  async function loadStats() {
    const c = card;
    const st = await getJSON('/v1/stats/' + segment(c.rel) + '/' + c.side + '/' + segment(c.profile));
    if (c !== card) return;
    $('summary-count').textContent = st.count;
    const body = $('summary').tBodies[0];
    body.replaceChildren();
    const tops = $('tops');
    tops.replaceChildren();
    for (const [name, p] of Object.entries(st.properties)) {
      body.append(el('tr', { 'data-property': name }, el('td', {}, el('code', {}, name)),
        el('td', { class: 'num count' }, p.count),
        el('td', { class: 'num total' }, p.total === undefined ? '' : p.total)));
      if (p.top) tops.append(barChart(name, p.top));
    }
  }

  function weightsText(w) {
    return Object.entries(w).map(([k, v]) => k + '=' + v).join(', ');
  }

  async function loadEdges() {
    const c = card;
    const limit = $('edges-limit').value;
    const cursor = c.cursors[c.page];
    const page = await getJSON('/v1/edges/' + segment(c.rel) + '/' + c.side + '/' +
      segment(c.profile) + '?limit=' + limit + (cursor ? '&cursor=' + segment(cursor) : ''));
    if (c !== card) return;
    c.cursors[c.page + 1] = page.cursor;
    const body = $('edges').tBodies[0];
    body.replaceChildren();
    for (const e of page.edges) {
      body.append(el('tr', { 'data-profile': e.profile_id }, el('td', {}, e.profile_id),
        el('td', {}, e.database), el('td', {}, weightsText(e.weights)),
        el('td', {}, e.version === null ? '' : e.version)));
    }
    if (!page.edges.length) body.append(el('tr', {}, el('td', { colSpan: 4 }, 'none')));
    $('edges-page').textContent = 'page ' + (c.page + 1);
    $('edges-prev').disabled = c.page === 0;
    $('edges-next').disabled = page.cursor === null;
  }

  function report(e) {
    if (!(e instanceof Unauthorized)) $('lookup-error').textContent = e.message;
  }

  async function lookup() {
    card = { rel: $('relation').value, side: $('side').value, profile: $('profile').value,
      cursors: [null], page: 0 };
    $('lookup-error').textContent = '';
    $('card-title').textContent = card.rel + ' · ' + card.side + ' · ' + card.profile;
    try {
      await loadStats();
      await loadEdges();
      $('card').hidden = false;
    } catch (e) {
      report(e);
    }
  }

  function turn(delta) {
    if (!card) return;
    card.page += delta;
    loadEdges().catch(report);
  }

  /* ---- the live triggers ---- */

  function streamState(text, ok) {
    const b = $('stream-state');
    b.textContent = text;
    b.className = 'badge ' + (ok ? 'ok' : 'bad');
  }

  function addItem(li) {
    const list = $('triggers');
    list.prepend(li);
    while (list.children.length > MAX_TRIGGERS) list.lastElementChild.remove();
  }

  function showTrigger(t) {
    const d = t.event_data;
    const key = d.relation + '.' + d.direction + '.' + d.kind;
    const th = d.threshold;
    addItem(el('li', { 'data-trigger-id': d.id, 'data-event-id': d.source_event.id,
      'data-key': key },
      el('span', { class: 'when' }, (t.event_date || '').slice(11, 23)),
      el('span', { class: 'key' }, key), ' ', t.profile_id, ' → ', d.counterpart.profile_id,
      th ? ' (' + th.stat + (th.property ? '(' + th.property + ')' : '') + ' ' + th.crossing +
           ' ' + th.value + ')' : '',
      ' · event ', d.source_event.id));
    if (card && card.rel === d.relation && card.side === d.direction &&
        card.profile === t.profile_id)
      loadStats().catch(report);
  }

  function onEvent(type, data) {
    if (type === 'ready') streamState('live', true);
    else if (type === 'trigger') showTrigger(parse(data));
    else if (type === 'dropped')
      addItem(el('li', { class: 'note' }, parse(data).dropped +
        ' triggers dropped: this page read too slowly'));
  }

  /* Server-sent events over fetch: blocks separated by a blank line, each
   * "event:" and "data:" lines; comments (":") ignored. */
  async function stream() {
    const r = await fetch('/v1/triggers/stream', { headers: authHeaders(), cache: 'no-store' });
    if (r.status === 401) {
      askToken();
      throw new Unauthorized('the token is required');
    }
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) type = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) onEvent(type, data.join('\n'));
      }
    }
  }

  async function openStream() {
    if (streaming) return;
    streaming = true;
    for (;;) {
      streamState('connecting', false);
      try {
        await stream();
        streamState('ended, reconnecting', false);
      } catch (e) {
        if (e instanceof Unauthorized) {
          streamState('token required', false);
          streaming = false;
          return;
        }
        streamState('reconnecting (' + e.message + ')', false);
      }
      await new Promise((done) => setTimeout(done, 2000));
    }
  }

  /* ---- health: /readyz and /metrics ---- */

  function metricLines(text) {
    const out = [];
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      out.push({ name: m[1], labels, value: parseFloat(m[3]) });
    }
    return out;
  }

  async function health() {
    const rows = [];
    const state = $('health-state');
    try {
      const [ready, metrics] = await Promise.all([
        fetch('/readyz', { cache: 'no-store' }).then(async (r) => [r.ok, await r.json()]),
        fetch('/metrics', { cache: 'no-store' }).then((r) => r.text())]);
      state.textContent = ready[0] ? 'ready' : 'not ready';
      state.className = 'badge ' + (ready[0] ? 'ok' : 'bad');
      for (const d of ready[1].down || [])
        rows.push(['down', (d.source ? d.source + ' ' : '') + d.component +
          (d.error ? ': ' + d.error : d.blocked ? ': blocked (' + d.blocked + ')' : '')]);
      for (const w of ready[1].waiting || []) rows.push(['waiting', w.source + ' for ' + w.for]);
      const lags = {};
      for (const m of metricLines(metrics)) {
        if (m.name === 'relationd_up')
          rows.push([m.labels.source + ' ' + m.labels.component, m.value === 1 ? 'up' : 'down']);
        else if (m.name === 'relationd_kafka_consumer_lag')
          lags[m.labels.topic] = (lags[m.labels.topic] || 0) + m.value;
        else if (m.name === 'relationd_hook_backlog')
          rows.push(['backlog of hook ' + m.labels.hook, String(m.value)]);
      }
      for (const [topic, lag] of Object.entries(lags)) rows.push(['Kafka lag ' + topic, String(lag)]);
    } catch (e) {
      state.textContent = 'unreachable';
      state.className = 'badge bad';
    }
    const body = $('health-table').tBodies[0];
    body.replaceChildren(...rows.map(([k, v]) => el('tr', { 'data-name': k },
      el('td', {}, k), el('td', { class: v === 'down' ? 'error' : '' }, v))));
  }

  /* ---- start ---- */

  async function start() {
    try {
      await loadRelations();
      openStream();
    } catch (e) {
      report(e);
    }
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value);
    $('token').value = '';
    $('token-form').hidden = true;
    start();
  });
  $('lookup').addEventListener('submit', (e) => { e.preventDefault(); lookup(); });
  $('edges-prev').addEventListener('click', () => turn(-1));
  $('edges-next').addEventListener('click', () => turn(1));
  $('edges-limit').addEventListener('change', () => {
    if (card) { card.cursors = [null]; card.page = 0; loadEdges().catch(report); }
  });
  health();
  setInterval(health, 5000);
  start();
})();
