/* culturelens report: lays out the embedded report model. Text goes into the DOM through textContent
   and setAttribute only (never as HTML markup), so dataset and model text is always shown, never run. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var WORLD = JSON.parse(document.getElementById('world-data').textContent);
  var SVGNS = 'http://www.w3.org/2000/svg';
  var SERIES = ['#2c5fa8', '#d9622b', '#2a9d8f', '#8e44ad', '#b8860b', '#c0392b'];
  var VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];
  var PAGE = 50;

  // ---------- DOM helpers ----------
  function $(id) { return document.getElementById(id); }
  function add(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(parent, c); }); return; }
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') node.textContent = String(v);
      else if (k.slice(0, 2) === 'on') throw new Error('no event attributes');
      else node.setAttribute(k, v === true ? '' : String(v));
    });
    return node;
  }
  function h(tag, attrs) {
    var node = setAttrs(document.createElement(tag), attrs);
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function s(tag, attrs) {
    var node = setAttrs(document.createElementNS(SVGNS, tag), attrs);
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function on(node, ev, fn) { node.addEventListener(ev, fn); return node; }

  // ---------- formatting ----------
  function fmt(x, nd) {
    if (x === null || x === undefined || typeof x !== 'number' || !isFinite(x)) return '–';
    return x.toFixed(nd === undefined ? 2 : nd);
  }
  function fmtCI(m, nd) {
    if (!m || m.mean === null || m.mean === undefined) return '–';
    var out = fmt(m.mean, nd), lo = m.lo, hi = m.hi;
    if ((lo === undefined || lo === null) && Array.isArray(m.ci)) { lo = m.ci[0]; hi = m.ci[1]; }
    if (m.flat) return out + ' [no interval: all ' + (m.n === undefined ? '' : m.n + ' ') + 'values equal]';
    if (lo !== null && lo !== undefined) out += ' [' + fmt(lo, nd) + ', ' + fmt(hi, nd) + ']';
    return out;
  }
  var SMALL_N = D.small_n || 10;
  var BLIND = 'Every country was asked exactly the same prompts (no persona, no country in the text): per-country differences in this run are chance, not culture. Ask as each country (e.g. --persona typical:@item) to compare countries.';
  function isSmall(n) { return typeof n === 'number' && n < SMALL_N; }
  function linesOf(task, m) { return (task && task.lines && task.lines[m]) || {}; }
  function plural(n, word) { return n + ' ' + (n === 1 ? word : /[^aeiou]y$/.test(word) ? word.slice(0, -1) + 'ies' : word + 's'); }
  function metricLabel(task, m) { return (task && task.metric_labels && task.metric_labels[m]) || m; }
  function sigMark(p) { return p === null || p === undefined ? '' : p < 0.001 ? '***' : p < 0.01 ? '**' : p < 0.05 ? '*' : ''; }

  // ---------- colour ----------
  function hex2rgb(hx) { return [1, 3, 5].map(function (i) { return parseInt(hx.slice(i, i + 2), 16); }); }
  var VIR = VIRIDIS.map(hex2rgb);
  function viridis(t) {
    t = Math.max(0, Math.min(1, t));
    var x = t * (VIR.length - 1), i = Math.min(VIR.length - 2, Math.floor(x)), f = x - i;
    var c = VIR[i].map(function (v, k) { return Math.round(v + f * (VIR[i + 1][k] - v)); });
    return 'rgb(' + c.join(',') + ')';
  }
  // diverging scale centred on a reference (chance): red below, white at it, blue above
  var DIV_LO = [178, 24, 43], DIV_MID = [247, 247, 247], DIV_HI = [33, 102, 172];
  function diverging(t) {  // t in [-1, 1]
    t = Math.max(-1, Math.min(1, t));
    var a = DIV_MID, b = t < 0 ? DIV_LO : DIV_HI, f = Math.abs(t);
    return 'rgb(' + a.map(function (v, k) { return Math.round(v + f * (b[k] - v)); }).join(',') + ')';
  }
  function centredDomain(values, centre) {
    var vals = values.filter(function (v) { return typeof v === 'number' && isFinite(v); });
    var d = vals.reduce(function (acc, v) { return Math.max(acc, Math.abs(v - centre)); }, 0.05);
    d = Math.ceil(d * 20) / 20;
    return [centre - d, centre + d];
  }
  function niceDomain(values) {
    var vals = values.filter(function (v) { return typeof v === 'number' && isFinite(v); });
    if (!vals.length) return [0, 1];
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (lo >= 0 && hi <= 1) {
      lo = Math.floor(lo * 10) / 10; hi = Math.ceil(hi * 10) / 10;
      if (hi - lo < 0.2) { lo = Math.max(0, lo - 0.1); hi = Math.min(1, hi + 0.1); }
      return [lo, hi];
    }
    if (hi === lo) { lo -= 1; hi += 1; }
    return [lo, hi];
  }
  function ticks(lo, hi, n) {
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / n)));
    [1, 2, 2.5, 5, 10].some(function (m) { if (span / (step * m) <= n) { step *= m; return true; } return false; });
    var out = [];
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
    return out;
  }

  // ---------- tooltip ----------
  var tip = $('tooltip');
  function tipOn(node, textFn) {
    on(node, 'mousemove', function (ev) {
      tip.textContent = textFn();
      tip.hidden = false;
      var x = ev.clientX + 14, y = ev.clientY + 14;
      if (x + 330 > window.innerWidth) x = ev.clientX - 330;
      tip.style.left = x + 'px'; tip.style.top = y + 'px';
    });
    on(node, 'mouseleave', function () { tip.hidden = true; });
  }

  // ---------- state ----------
  var runs = D.runs;
  var state = { run: 0, task: null, metric: null, sort: 'region' };
  function taskOf(ri, name) { return runs[ri] && runs[ri].tasks[name]; }
  function firstTaskWithCountries() {
    for (var i = 0; i < D.tasks.length; i++) {
      for (var r = 0; r < runs.length; r++) {
        var t = taskOf(r, D.tasks[i]);
        if (t && t.countries.length) return D.tasks[i];
      }
    }
    return D.tasks[0] || null;
  }

  // ---------- summary ----------
  function renderSummary() {
    // a model whose headline does not clear chance gets a title that says so
    var notAbove = [], byRun = [];
    runs.forEach(function (r, ri) {
      var mine = [];
      D.tasks.forEach(function (name) {
        var t = taskOf(ri, name);
        (t && t.baselines || []).forEach(function (b) {
          if (b.name.indexOf('chance') === 0 && b.verdict !== 'above' && mine.indexOf(name) < 0) mine.push(name);
        });
      });
      mine.forEach(function (n) { if (notAbove.indexOf(n) < 0) notAbove.push(n); });
      if (mine.length) byRun.push(r.label + ' on ' + mine.join(', '));
    });
    var title;
    if (runs.length > 1) {
      title = 'Comparison: ' + runs.map(function (r, i) { return (i === 0 ? 'A = ' : i === 1 ? 'B = ' : '') + r.label; }).join(' vs ');
      if (byRun.length) title += ' — not above chance: ' + byRun.join('; ');
    } else {
      var surveysOnly = D.tasks.length > 0 && D.tasks.every(function (n) { var t = taskOf(0, n); return t && t.survey; });
      title = notAbove.length ? runs[0].label + ': not above chance on ' + notAbove.join(', ')
        : (surveysOnly ? 'Survey answers and value alignment of ' : 'Cultural competence of ') + runs[0].label;
    }
    $('report-title').textContent = title;
    $('report-meta').textContent = 'Generated ' + D.generated + ' by culturelens ' + D.culturelens + ' · ' +
      plural(runs.length, 'run') + ' · ' + plural(D.tasks.length, 'task');
    var cards = clear($('run-cards'));
    runs.forEach(function (r, i) {
      var dl = h('dl');
      function row(k, v) { if (v !== null && v !== undefined && v !== '') add(dl, [h('dt', { text: k }), h('dd', {}, v)]); }
      var model = r.model || {};
      row('model', String(model.model || r.label));
      row('backend', String(model.backend || ''));
      if (model.sha256) row('sha256', h('span', { class: 'mono', text: String(model.sha256).slice(0, 16) + '…' }));
      row('tasks', Object.keys(r.tasks).map(function (n) {
        var t = r.tasks[n];
        return n + ' (' + (t.items === null || t.items === undefined ? '?' : t.items) + ' items, ' + (t.modes || []).join('/') + ')';
      }).join('; '));
      row('samples', String(r.n_samples) + (r.n_variants > 1 ? ' (' + r.n_variants + ' prompt variants)' : ''));
      row('date', r.date);
      row('run dir', h('span', { class: 'mono', text: r.dir }));
      if (r.command) row('command', h('code', { class: 'cmd', text: r.command }));
      if (r.reproduce) row('reproduce', h('code', { class: 'cmd', text: r.reproduce }));
      if (r.timing && r.timing.wall_s !== undefined) {
        row('timing', fmt(r.timing.wall_s, 1) + ' s wall · ' + fmt(r.timing.samples_per_s, 1) + ' samples/s · ' +
          (r.timing.cache_hits || 0) + ' from cache');
      }
      (r.notes || []).forEach(function (n) { row('note', n); });
      add(cards, h('div', { class: 'card' }, h('h3', {}, h('span', { style: null, text: runs.length > 1 ? 'Run ' + (i + 1) + ': ' : '' }), r.label), dl));
    });
    // headline table: tasks x runs. A comparison leads with the scores on the items both runs scored.
    var head = clear($('headline'));
    var comps = (D.comparisons || []).filter(function (c) { return c.result; });
    var differing = [];
    comps.forEach(function (c) {
      Object.keys(c.item_sets || {}).forEach(function (name) {
        var st = c.item_sets[name];
        if (!st.same) differing.push(name + ': ' + runs[c.a].label + ' ' + st.a + ' items, ' + runs[c.b].label + ' ' + st.b + ', ' + st.shared + ' shared');
      });
    });
    if (differing.length) {
      add(head, h('p', { class: 'callout item-set-warning', text: 'The runs scored different item sets (' + differing.join('; ') +
        '). The paired table compares them on the shared items only; each run\'s score on all of its own items is shown below it and is not comparable with the other run\'s.' }));
    }
    // 1. a comparison leads with the paired table: both runs on the items both scored, and A - B
    if (comps.length) {
      var ptbl = h('table', { id: 'paired-table' });
      var ptr = h('tr', {}, h('th', { text: 'task' }), h('th', { text: 'metric' }), h('th', { text: 'B' }), h('th', { class: 'num', text: 'shared items' }),
        h('th', { class: 'num', text: 'A on them' }), h('th', { class: 'num', text: 'B on them' }), h('th', { class: 'num', text: 'A − B [95% CI], paired' }));
      add(ptbl, h('thead', {}, ptr));
      var pbody = h('tbody');
      D.tasks.forEach(function (name) {
        var ref = taskOf(0, name);
        comps.forEach(function (c) {
          var cr = compareRow(c.b, name, 'all'), row = h('tr', {}, h('td', {}, h('strong', { text: name })), h('td', { text: ref && ref.metric ? metricLabel(ref, ref.metric) : '–' }),
            h('td', { text: runs[c.b].label }));
          if (!cr) add(row, [h('td', { class: 'num', text: '–' }), h('td', { class: 'num', text: '–' }), h('td', { class: 'num', text: '–' }), h('td', { class: 'num', text: 'no shared items' })]);
          else add(row, [h('td', { class: 'num shared-n', text: String(cr.n) }), h('td', { class: 'num shared-a', text: fmt(cr.a, 3) }), h('td', { class: 'num shared-b', text: fmt(cr.b, 3) }),
            h('td', { class: 'num' }, [(cr.diff > 0 ? '+' : '') + fmt(cr.diff, 3) + ' [' + fmt(cr.ci[0], 3) + ', ' + fmt(cr.ci[1], 3) + '] p=' +
              (cr.p < 0.001 ? '<0.001' : fmt(cr.p, 3)) + ' ', h('span', { class: 'sig', text: sigMark(cr.p) })])]);
          add(pbody, row);
        });
      });
      add(ptbl, pbody);
      add(head, [h('h3', { text: 'Paired comparison on shared items' }), h('div', { class: 'table-wrap' }, ptbl),
        h('p', { class: 'note', text: 'A = ' + runs[0].label + (runs.length === 2 ? ', B = ' + runs[1].label : '; B = each later run') +
          '. A − B is paired on the items both runs scored; positive: A scored higher (McNemar for 0/1 scores, paired permutation otherwise). Significance marks: * p<0.05, ** p<0.01, *** p<0.001.' })]);
    }
    // 2. each run on all of its own items, with its baselines (one row per task and run)
    var tbl = h('table', { id: 'headline-table' });
    var multi = runs.length > 1;
    var tr = h('tr', {}, h('th', { text: 'task' }), h('th', { text: 'metric' }), multi ? h('th', { text: 'run' }) : null,
      h('th', { class: 'num', text: multi ? 'score' : runs[0].label }), h('th', { class: 'num', text: 'n' }), h('th', { text: 'baselines (answering without looking)' }));
    add(tbl, h('thead', {}, tr));
    var body = h('tbody');
    D.tasks.forEach(function (name) {
      var ref = null;
      for (var i = 0; i < runs.length && !ref; i++) ref = taskOf(i, name);
      var m = ref.metric;
      var desc = [h('strong', { text: name }), h('div', { class: 'tag', text: ref.description || '' })];
      if (ref.country_blind) desc.push(h('div', { class: 'tag country-blind', text: BLIND }));
      if (ref.survey) desc.push(h('div', { class: 'tag survey-note', text: 'Survey: no right answer. ' + metricLabel(ref, m) + ' describes the model\'s own answers, not their quality; how close they are to each country\'s human answers is in "Values and alignment" and, per question, in the sample explorer.' }));
      var shown = runs.map(function (r, ri) { return ri; }).filter(function (ri) { return taskOf(ri, name); });
      shown.forEach(function (ri, k) {
        var r = runs[ri], t = taskOf(ri, name), mm = m ? t.metrics[m] : null;
        var row = h('tr', { class: k ? 'cont' : null });
        if (!k) add(row, [h('td', { rowspan: shown.length }, desc), h('td', { rowspan: shown.length, text: m ? metricLabel(ref, m) : '–' })]);
        if (multi) add(row, h('td', { text: (ri === 0 ? 'A = ' : '') + (comps.length && ri > 0 ? 'B = ' : '') + r.label }));
        var cellBody = [fmtCI(mm, 3)];
        if (t.across) {
          // a sweep leads with the mean over its variants; the primary variant's own score is labelled
          cellBody = [h('div', { class: 'across' }, 'mean of ' + t.across.n_variants + ' variants ' + fmt(t.across.mean, 3) + ' (range ' + fmt(t.across.min, 3) + '–' + fmt(t.across.max, 3) + ')'),
            h('div', { class: 'tag primary' }, 'primary variant "' + t.across.primary + '": ' + fmtCI(mm, 3))];
        }
        var bl = (t.baselines || []).map(function (b) { return b.label + ' ' + fmt(b.value, 3) + ': ' + b.verdict; });
        add(row, [h('td', { class: 'num' }, cellBody), h('td', { class: 'num', text: String(t.n) + (t.invalid ? ' (' + t.invalid + ' invalid)' : '') }),
          h('td', { class: 'baselines', text: bl.length ? bl.join(' · ') + (t.across ? ' (verdicts for the primary variant)' : '') : '–' })]);
        add(body, row);
      });
    });
    add(tbl, body);
    add(head, [h('h3', { text: multi ? 'Each run on all of its own items (95% confidence intervals)' : 'Headline scores (95% confidence intervals)' }),
      h('div', { class: 'table-wrap' }, tbl)]);
    var notes = [];
    if (differing.length) notes.push('The runs scored different item sets: these scores are not comparable with each other; the paired table above is.');
    if (D.tasks.some(function (n) { return runs.some(function (r, ri) { var t = taskOf(ri, n); return t && t.across; }); }))
      notes.push('A sweep\'s headline is the mean of its prompt variants\' scores with their range; its interval is the primary variant\'s (the first of the design). The Stability section says whether the variants differ beyond chance.');
    notes.forEach(function (n) { add(head, h('p', { class: 'note', text: n })); });
  }

  // comparison row of run b (vs run 0) for a task and group ('all' or a country name)
  function compareRow(b, task, group) {
    var c = (D.comparisons || []).filter(function (x) { return x.b === b && x.result; })[0];
    if (!c) return null;
    var t = c.result.tasks && c.result.tasks[task];
    if (!t) return null;
    return (t.rows || []).filter(function (r) { return r.group === group; })[0] || null;
  }

  // ---------- controls ----------
  function select(labelText, options, value, onChange, id) {
    var sel = h('select', { id: id });
    options.forEach(function (o) { add(sel, h('option', { value: o[0], text: o[1], selected: String(o[0]) === String(value) })); });
    on(sel, 'change', function () { onChange(sel.value); });
    return h('label', {}, labelText, sel);
  }

  function renderCountryControls() {
    var box = clear($('country-controls'));
    var taskOpts = D.tasks.map(function (t) { return [t, t]; });
    add(box, select('Task', taskOpts, state.task, function (v) { state.task = v; state.metric = null; renderCountries(); }, 'ctl-task'));
    var t = taskOf(state.run, state.task) || taskOf(0, state.task);
    var metrics = t ? Object.keys(t.metrics) : [];
    if (!state.metric || metrics.indexOf(state.metric) < 0) state.metric = t ? t.metric : null;
    add(box, select('Metric', metrics.map(function (m) { return [m, metricLabel(t, m)]; }), state.metric,
      function (v) { state.metric = v; renderCountries(); }, 'ctl-metric'));
    if (runs.length > 1) {
      add(box, select('Map shows', runs.map(function (r, i) { return [i, r.label]; }), state.run,
        function (v) { state.run = Number(v); renderCountries(); }, 'ctl-run'));
    }
  }

  // ---------- map ----------
  function renderMap() {
    var wrap = clear($('map')), legend = clear($('map-legend')), note = $('map-note');
    var run = runs[state.run], t = taskOf(state.run, state.task), m = state.metric;
    $('map-title').textContent = 'World map: ' + (t ? metricLabel(t, m) : '') + ' by country — ' + state.task + ' · ' + run.label + primaryNote(t);
    if (!t || !t.countries.length) {
      add(wrap, h('p', { class: 'note', text: 'No per-country results for this task in this run.' }));
      note.textContent = '';
      return;
    }
    var byKey = {};
    t.countries.forEach(function (c) { byKey[c.key] = c; });
    var vals = {};
    Object.keys(t.map).forEach(function (iso) {
      var row = byKey[t.map[iso].key], mm = row && row.metrics[m];
      if (mm && mm.mean !== null) vals[iso] = { row: row, m: mm, via: t.map[iso].via };
    });
    var chance = linesOf(t, m).chance, centred = typeof chance === 'number';
    var valueList = Object.keys(vals).map(function (k) { return vals[k].m.mean; });
    var dom = centred ? centredDomain(valueList, chance) : niceDomain(valueList);
    function color(v) {
      return centred ? diverging((v - chance) / ((dom[1] - chance) || 1)) : viridis((v - dom[0]) / ((dom[1] - dom[0]) || 1));
    }
    var svg = s('svg', { viewBox: '0 0 ' + WORLD.width + ' ' + WORLD.height, role: 'img', id: 'map-svg',
      'aria-label': 'World map of ' + metricLabel(t, m) + ' by country' });
    add(svg, s('title', { text: 'World map: ' + metricLabel(t, m) + ' by country' }));
    var defs = s('defs', {}, s('pattern', { id: 'nodata', width: 4, height: 4, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      s('rect', { width: 4, height: 4, fill: '#e4e6ea' }), s('line', { x1: 0, y1: 0, x2: 0, y2: 4, stroke: '#c3c7cf', 'stroke-width': 1.4 })),
      s('pattern', { id: 'smalln', width: 5, height: 5, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(-45)' },
        s('line', { x1: 0, y1: 0, x2: 0, y2: 5, stroke: '#333', 'stroke-width': 1.3, 'stroke-opacity': 0.75 })));
    add(svg, defs);
    var g = s('g'), markers = s('g');
    var shown = {};
    function describe(iso, name) {
      var v = vals[iso];
      if (!v) return name + ': no data';
      var label = v.row.name + (v.via ? ' (sub-national entry, standing in for ' + v.row.country + ')' : '');
      return label + '\n' + metricLabel(t, m) + ': ' + fmtCI(v.m, 3) + '\nn = ' + v.row.n + ' · ' + v.row.region +
        (isSmall(v.row.n) ? '\nfewer than ' + SMALL_N + ' scored units: a weak estimate' : '') +
        (centred ? '\n' + (v.m.lo > chance ? 'above chance' : v.m.hi < chance ? 'below chance' : 'not distinguishable from chance') + ' (' + fmt(chance, 2) + ')' : '');
    }
    Object.keys(WORLD.countries).forEach(function (iso) {
      var c = WORLD.countries[iso], v = vals[iso];
      if (c.d) {
        var p = s('path', { d: c.d, class: 'country ' + (v ? 'has-data' : 'no-data') + (v && v.via ? ' via-sub' : ''),
          fill: v ? color(v.m.mean) : 'url(#nodata)', 'data-iso2': iso }, s('title', { text: describe(iso, c.n) }));
        tipOn(p, function () { return describe(iso, c.n); });
        add(g, p);
        if (v && isSmall(v.row.n)) add(g, s('path', { d: c.d, class: 'country small-n', fill: 'url(#smalln)', 'pointer-events': 'none', 'data-iso2': iso }));
      }
      if (c.p && v) {
        var mk = s('circle', { cx: c.p[0], cy: c.p[1], r: 4.5, class: 'marker has-data' + (isSmall(v.row.n) ? ' small-n' : ''), fill: color(v.m.mean), 'data-iso2': iso,
          'stroke-dasharray': isSmall(v.row.n) ? '1.5 1.5' : null },
          s('title', { text: describe(iso, c.n) }));
        tipOn(mk, function () { return describe(iso, c.n); });
        add(markers, mk);
      }
      if (v) shown[iso] = true;
    });
    add(svg, [g, markers]);
    add(wrap, svg);
    // legend: colour bar with ticks, no-data swatch, marker and sub-national keys
    var lw = 320, lsvg = s('svg', { width: lw + 60, height: 58, viewBox: '0 0 ' + (lw + 60) + ' 58', id: 'map-legend-svg', role: 'img',
      'aria-label': 'Colour scale' });
    var grad = s('linearGradient', { id: 'legend-grad', x1: 0, x2: 1, y1: 0, y2: 0 });
    var bounded = valueList.every(function (v) { return v >= 0 && v <= 1; });
    var ldom = bounded ? [Math.max(0, dom[0]), Math.min(1, dom[1])] : dom;
    for (var gi = 0; gi <= 8; gi++) add(grad, s('stop', { offset: (gi / 8 * 100) + '%', 'stop-color': color(ldom[0] + gi / 8 * (ldom[1] - ldom[0])) }));
    add(lsvg, s('defs', {}, grad));
    add(lsvg, s('text', { x: 10, y: 11, 'font-size': 11, text: metricLabel(t, m) + (centred ? ' (red: below chance · blue: above)' : ' (colour scale)') }));
    add(lsvg, s('rect', { x: 10, y: 27, width: lw, height: 12, fill: 'url(#legend-grad)', stroke: '#888', 'stroke-width': 0.5 }));
    function LX(v) { return 10 + (v - ldom[0]) / ((ldom[1] - ldom[0]) || 1) * lw; }
    ticks(ldom[0], ldom[1], 5).forEach(function (v) {
      add(lsvg, [s('line', { x1: LX(v), x2: LX(v), y1: 39, y2: 43, stroke: '#555' }), s('text', { x: LX(v), y: 54, 'font-size': 10, 'text-anchor': 'middle', text: fmt(v, 2) })]);
    });
    if (centred) {
      add(lsvg, [s('line', { x1: LX(chance), x2: LX(chance), y1: 23, y2: 41, stroke: '#111', 'stroke-width': 1.5, class: 'chance-tick' }),
        s('text', { x: LX(chance), y: 22, 'font-size': 10, 'text-anchor': 'middle', 'font-weight': 700, text: 'chance ' + fmt(chance, 2) })]);
    }
    add(legend, lsvg);
    var nod = s('svg', { width: 22, height: 14, viewBox: '0 0 22 14' }, s('rect', { width: 22, height: 14, fill: 'url(#nodata)', stroke: '#999', 'stroke-width': 0.5 }));
    add(legend, h('span', {}, nod, ' no data (not evaluated)'));
    add(legend, h('span', {}, s('svg', { width: 14, height: 14, viewBox: '0 0 14 14' }, s('circle', { cx: 7, cy: 7, r: 5, fill: '#9ab', stroke: '#333', 'stroke-width': 0.5 })), ' small country (marker)'));
    var nSmall = Object.keys(vals).filter(function (k) { return isSmall(vals[k].row.n); }).length;
    if (nSmall) add(legend, h('span', { class: 'legend-small-n' }, s('svg', { width: 22, height: 14, viewBox: '0 0 22 14' }, s('rect', { width: 22, height: 14, fill: '#ddd' }), s('rect', { width: 22, height: 14, fill: 'url(#smalln)', stroke: '#999', 'stroke-width': 0.5 })),
      ' hatched: fewer than ' + SMALL_N + ' scored units (' + nSmall + ' countries), a weak estimate'));
    var subs = Object.keys(vals).filter(function (k) { return vals[k].via; });
    if (subs.length) add(legend, h('span', {}, s('svg', { width: 22, height: 14, viewBox: '0 0 22 14' }, s('rect', { width: 22, height: 14, fill: '#5ec962', stroke: '#111', 'stroke-dasharray': '2 1.5' })), ' coloured from a sub-national entry'));
    var missing = t.countries.filter(function (c) { return !c.iso2 || (!WORLD.countries[c.iso2]); }).map(function (c) { return c.name; });
    var subOnly = t.countries.filter(function (c) { return c.subnational && !(t.map[c.iso2] && t.map[c.iso2].key === c.key); }).map(function (c) { return c.name; });
    var parts = [Object.keys(shown).length + ' of ' + t.countries.length + ' country entries on the map; colour scale ' + fmt(ldom[0], 2) + '–' + fmt(ldom[1], 2) +
      (centred ? ', centred on the chance baseline ' + fmt(chance, 3) + ' (white: a country scored what guessing gives)' : '') + '. Hover a country for its score, 95% CI and n.'];
    if (t.country_blind) parts.unshift(BLIND);
    if (t.vs_chance && t.vs_chance !== 'above' && m === t.metric) parts.unshift('The overall score is not above chance (' + t.vs_chance + '): differences between countries on this map may reflect answer bias, not knowledge.');
    if (subOnly.length) parts.push('Sub-national entries shown in the forest plot only (their country has its own entry): ' + subOnly.join(', ') + '.');
    if (missing.length) parts.push('Not drawable on the map: ' + missing.join(', ') + '.');
    note.textContent = parts.join(' ');
  }

  // ---------- forest plot ----------
  // spec: {id, title, xlabel, rows: [{label, header?, values: [{mean, lo, hi, n}|null per series], mark?}], series: [labels], ref?}
  function forest(spec) {
    var nS = spec.series.length;
    var FW = spec.width || 960, rowH = nS > 1 ? 8 + 9 * nS : 20, labelW = spec.labelW || 210;
    var rightW = nS > 1 ? 60 + 46 * nS : 170, plotW = FW - labelW - rightW - 24, maxChars = Math.floor(labelW / 7);
    var refLines = (spec.lines || []).filter(function (l) { return typeof l.value === 'number'; })
      .sort(function (a, b) { return a.value - b.value; });
    var top = nS > 1 ? 30 : 12, bottom = refLines.length ? 60 : 44;
    var height = top + spec.rows.length * rowH + bottom;
    var all = [];
    var anySmall = false;
    spec.rows.forEach(function (r) { (r.values || []).forEach(function (v) { if (v && v.mean !== null) { all.push(v.mean); if (v.lo !== null) all.push(v.lo); if (v.hi !== null) all.push(v.hi); if (!r.header && isSmall(v.n)) anySmall = true; } }); });
    (spec.lines || []).forEach(function (l) { if (typeof l.value === 'number') all.push(l.value); });
    var dom = spec.domain || (all.length && Math.min.apply(null, all) >= 0 && Math.max.apply(null, all) <= 1 ? [0, 1] : niceDomain(all));
    function X(v) { return labelW + (v - dom[0]) / ((dom[1] - dom[0]) || 1) * plotW; }
    var svg = s('svg', { viewBox: '0 0 ' + FW + ' ' + height, class: 'forest', id: spec.id, role: 'img', 'aria-label': spec.title });
    add(svg, s('title', { text: spec.title }));
    var grid = s('g', { class: 'grid' }), axis = s('g', { class: 'axis' });
    var tk = ticks(dom[0], dom[1], 6);
    tk.forEach(function (v) {
      add(grid, s('line', { x1: X(v), x2: X(v), y1: top - 4, y2: height - bottom }));
      add(axis, [s('line', { x1: X(v), x2: X(v), y1: height - bottom, y2: height - bottom + 4 }),
        s('text', { x: X(v), y: height - bottom + 16, 'font-size': 11, 'text-anchor': 'middle', text: fmt(v, 2) })]);
    });
    add(axis, s('line', { x1: labelW, x2: labelW + plotW, y1: height - bottom, y2: height - bottom }));
    add(axis, s('text', { x: labelW + plotW / 2, y: height - bottom + 34, 'font-size': 12, 'text-anchor': 'middle',
      text: spec.xlabel + (anySmall ? ' · † faded: n < ' + SMALL_N + ', a weak estimate' : '') }));
    if (refLines.length) {  // the reference lines' key, under the axis (labels on the lines would collide)
      var key = s('text', { x: labelW + plotW / 2, y: height - 6, 'font-size': 11, 'text-anchor': 'middle' });
      refLines.forEach(function (l, i) {
        add(key, s('tspan', { fill: l.color || '#b2182b', class: (l.cls || 'ref-line') + '-label',
          text: (i ? '   ' : '') + '┆ ' + l.label + ' ' + fmt(l.value, 2) }));
      });
      add(axis, key);
    }
    add(svg, [grid, axis]);
    if (spec.ref !== undefined && spec.ref !== null) {
      add(svg, s('line', { x1: X(spec.ref), x2: X(spec.ref), y1: top - 4, y2: height - bottom, stroke: '#999', 'stroke-dasharray': '4 3' }));
      add(svg, s('text', { x: X(spec.ref) + 3, y: top - 6 > 8 ? top - 6 : 9, 'font-size': 10, fill: '#777', text: spec.refLabel || 'overall' }));
    }
    refLines.forEach(function (l) {
      add(svg, s('line', { x1: X(l.value), x2: X(l.value), y1: top - 4, y2: height - bottom, stroke: l.color || '#b2182b', 'stroke-width': 1.4,
        'stroke-dasharray': '2 2', class: l.cls || 'ref-line' }));
    });
    add(svg, s('text', { x: FW - rightW, y: top - 2 > 9 ? top - 2 : 10, 'font-size': 10.5, fill: '#5b6475', text: nS > 1 ? 'n · means' : 'n · mean [95% CI]' }));
    if (nS > 1) {
      spec.series.forEach(function (lab, i) {
        var x = labelW + i * Math.min(190, (FW - labelW) / nS);
        add(svg, [s('circle', { cx: x + 5, cy: 10, r: 4, fill: SERIES[i % SERIES.length] }),
          s('text', { x: x + 13, y: 14, 'font-size': 11, text: lab.length > 26 ? lab.slice(0, 25) + '…' : lab })]);
      });
    }
    spec.rows.forEach(function (r, i) {
      var y0 = top + i * rowH, cy = y0 + rowH / 2;
      var g = s('g', { class: r.header ? 'forest-group' : 'forest-row' });
      if (r.header) add(g, s('rect', { x: 0, y: y0, width: FW, height: rowH, fill: '#f1f3f6' }));
      var small = !r.header && (r.values || []).some(function (v) { return v && isSmall(v.n); });
      var lab = r.label.length > maxChars - 2 ? r.label.slice(0, maxChars - 3) + '…' : r.label;
      if (small) { lab += ' †'; g.setAttribute('class', 'forest-row small-n'); }
      add(g, s('text', { x: r.header ? 4 : 14, y: cy + 4, 'font-size': 12, 'font-weight': r.header ? 700 : 400, text: lab + (r.mark ? ' ' + r.mark : '') }));
      var nTxt = [], mTxt = [];
      (r.values || []).forEach(function (v, si) {
        if (!v || v.mean === null || v.mean === undefined) { mTxt.push('–'); return; }
        var yy = nS > 1 ? y0 + 5 + si * 9 + 4 : cy, col = SERIES[si % SERIES.length], op = !r.header && isSmall(v.n) ? 0.4 : 1;
        if (v.lo !== null && v.hi !== null) add(g, s('line', { x1: X(v.lo), x2: X(v.hi), y1: yy, y2: yy, stroke: col, 'stroke-width': r.header ? 2.5 : 1.6, 'stroke-opacity': op }));
        if (r.header) add(g, s('path', { d: 'M' + X(v.mean) + ' ' + (yy - 5) + 'l5 5l-5 5l-5-5z', fill: col, class: 'point' }));
        else add(g, s('circle', { cx: X(v.mean), cy: yy, r: 3.6, fill: col, class: 'point', 'fill-opacity': op }));
        nTxt.push(v.n); mTxt.push(nS > 1 ? fmt(v.mean, 2) : fmtCI(v, 2));
      });
      var firstN = nTxt.filter(function (n) { return n !== undefined && n !== null; })[0];
      add(g, s('text', { x: FW - rightW, y: cy + 4, 'font-size': 11, text: (firstN === undefined ? '' : firstN + ' · ') + mTxt.join(' | ') }));
      add(g, s('title', { text: r.label + '\n' + (r.values || []).map(function (v, si) { return spec.series[si] + ': ' + (v ? fmtCI(v, 3) + ' (n=' + v.n + ')' : 'no data'); }).join('\n') }));
      add(svg, g);
    });
    return svg;
  }

  // a sweep's per-country views show its primary variant: say so where they are titled
  function primaryNote(t) { return t && t.across ? ' · primary variant "' + t.across.primary + '" (of ' + t.across.n_variants + ')' : ''; }

  function chanceLines(task, m) {
    var l = linesOf(task, m), out = [];
    if (typeof l.chance === 'number') out.push({ value: l.chance, label: 'chance', cls: 'chance-line' });
    if (typeof l.majority === 'number' && Math.abs(l.majority - (l.chance || -1)) > 0.005) out.push({ value: l.majority, label: 'always the most common answer', cls: 'majority-line', color: '#8a6d00' });
    return out;
  }

  function metricValues(entity, m) { return entity && entity.metrics ? entity.metrics[m] || null : null; }

  function renderForest() {
    var box = clear($('forest')), ctl = clear($('forest-controls'));
    var m = state.metric;
    var ref = taskOf(state.run, state.task) || taskOf(0, state.task);
    $('forest-title').textContent = 'Forest plot: ' + metricLabel(ref, m) + ' per country with 95% CIs — ' + state.task + primaryNote(ref);
    add(ctl, select('Sort', [['region', 'grouped by region'], ['desc', 'score, high to low'], ['asc', 'score, low to high'], ['name', 'name'], ['n', 'n (largest first)']],
      state.sort, function (v) { state.sort = v; renderForest(); }, 'ctl-sort'));
    var keys = {}, order = [];
    runs.forEach(function (r, ri) {
      var t = taskOf(ri, state.task);
      (t ? t.countries : []).forEach(function (c) { if (!keys[c.key]) { keys[c.key] = c; order.push(c.key); } });
    });
    if (!order.length) { add(box, h('p', { class: 'note', text: 'No per-country results for this task.' })); $('forest-note').textContent = ''; return; }
    function vals(key) {
      return runs.map(function (r, ri) {
        var t = taskOf(ri, state.task);
        var c = t && t.countries.filter(function (x) { return x.key === key; })[0];
        return metricValues(c, m) ? Object.assign({ n: c.n }, metricValues(c, m)) : null;
      });
    }
    function sortScore(key) { var v = vals(key)[state.run] || vals(key)[0]; return v ? v.mean : -Infinity; }
    function mark(key) {
      if (runs.length < 2) return '';
      var c = compareRow(1, state.task, key);
      return c ? sigMark(c.p_holm !== undefined ? c.p_holm : c.p) : '';
    }
    function label(c) { return c.subnational && c.subnational !== c.name ? c.subnational + ' (' + c.country + ')' : (c.subnational ? c.name + ' (' + c.country + ')' : c.name); }
    var rows = [];
    if (state.sort === 'region') {
      var regions = {};
      order.forEach(function (k) { var reg = keys[k].region || 'Other'; (regions[reg] = regions[reg] || []).push(k); });
      Object.keys(regions).sort().forEach(function (reg) {
        var hv = runs.map(function (r, ri) {
          var t = taskOf(ri, state.task), g = t && t.regions.filter(function (x) { return x.name === reg; })[0];
          return metricValues(g, m) ? Object.assign({ n: g.n }, metricValues(g, m)) : null;
        });
        rows.push({ label: reg, header: true, values: hv });
        regions[reg].sort(function (a, b) { return sortScore(b) - sortScore(a); }).forEach(function (k) {
          rows.push({ label: label(keys[k]), values: vals(k), mark: mark(k) });
        });
      });
    } else {
      var sorted = order.slice();
      if (state.sort === 'desc') sorted.sort(function (a, b) { return sortScore(b) - sortScore(a); });
      if (state.sort === 'asc') sorted.sort(function (a, b) { return sortScore(a) - sortScore(b); });
      if (state.sort === 'name') sorted.sort(function (a, b) { return label(keys[a]).localeCompare(label(keys[b])); });
      if (state.sort === 'n') sorted.sort(function (a, b) { return (keys[b].n || 0) - (keys[a].n || 0); });
      sorted.forEach(function (k) { rows.push({ label: label(keys[k]), values: vals(k), mark: mark(k) }); });
    }
    var overall = ref && ref.metrics[m] ? ref.metrics[m].mean : null;
    add(box, forest({ id: 'forest-svg', title: 'Per-country ' + metricLabel(ref, m), xlabel: metricLabel(ref, m) + ' — point estimate and 95% CI',
      rows: rows, series: runs.map(function (r) { return r.label; }), ref: overall, refLabel: 'overall ' + fmt(overall, 2), lines: chanceLines(ref, m) }));
    $('forest-note').textContent = (state.sort === 'region' ? 'Region rows (◆) show the region mean. ' : '') +
      'Grey dashed line: overall mean' + (runs.length > 1 ? ' of ' + runs[state.run].label : '') + '.' +
      (chanceLines(ref, m).length ? ' Red dotted line: what guessing gives (chance); a country whose interval crosses it is not shown to be above chance.' : '') +
      (chanceLines(ref, m).length > 1 ? ' Brown dotted line: what always giving the most common correct label scores.' : '') +
      ' n = scored units per country; † faded: fewer than ' + SMALL_N + '.' +
      (runs.length > 1 ? ' Marks after a name: paired difference between run 2 and run 1 (Holm-adjusted p: * <0.05, ** <0.01, *** <0.001).' : '');
  }

  function renderRegions() {
    var box = clear($('regions')), gapBox = clear($('region-gap'));
    var m = state.metric, ref = taskOf(state.run, state.task) || taskOf(0, state.task);
    $('regions-title').textContent = 'Per-region ' + metricLabel(ref, m) + ' with 95% CIs — ' + state.task + primaryNote(ref);
    var names = [];
    runs.forEach(function (r, ri) { var t = taskOf(ri, state.task); (t ? t.regions : []).forEach(function (g) { if (names.indexOf(g.name) < 0) names.push(g.name); }); });
    if (!names.length) { $('regions-figure').hidden = true; gapBox.hidden = true; return; }
    $('regions-figure').hidden = false; gapBox.hidden = false;
    var rows = names.sort().map(function (n) {
      return { label: n, values: runs.map(function (r, ri) {
        var t = taskOf(ri, state.task), g = t && t.regions.filter(function (x) { return x.name === n; })[0];
        return metricValues(g, m) ? Object.assign({ n: g.n }, metricValues(g, m)) : null;
      }) };
    });
    add(box, forest({ id: 'regions-svg', title: 'Per-region ' + metricLabel(ref, m), xlabel: metricLabel(ref, m) + ' — point estimate and 95% CI',
      rows: rows, series: runs.map(function (r) { return r.label; }), ref: ref && ref.metrics[m] ? ref.metrics[m].mean : null, lines: chanceLines(ref, m) }));
    runs.forEach(function (r, ri) {
      var t = taskOf(ri, state.task), gap = t && t.region_gap ? t.region_gap[m] : null;
      if (!gap) return;
      var who = runs.length > 1 ? ' (' + r.label + ')' : '';
      var lead = gap.claim === 'difference' ? 'Region difference' + who + ': ' + fmt(gap.gap, 3) + '. ' : (gap.claim === 'no_difference' ? 'No region difference shown' : 'Region difference unknown') + who + '. ';
      var cautions = (gap.cautions || []).map(function (c) { return ' Caution: ' + c + '.'; }).join('');
      add(gapBox, h('p', { class: 'region-gap-' + (gap.claim || 'unknown') }, gap.claim === 'difference' ? h('strong', { text: lead }) : h('span', { text: lead }),
        gap.statement + ' Highest point estimate: ' + gap.best + ' ' + fmt(gap.best_mean, 3) + ' (n=' + gap.best_n + '); lowest: ' + gap.worst + ' ' + fmt(gap.worst_mean, 3) + ' (n=' + gap.worst_n + ').' + cautions));
    });
  }

  function renderCountries() { renderCountryControls(); renderMap(); renderForest(); renderRegions(); }

  // ---------- per task ----------
  function metricsTable(name) {
    var tbl = h('table'), ref = null;
    for (var i = 0; i < runs.length && !ref; i++) ref = taskOf(i, name);
    var tr = h('tr', {}, h('th', { text: 'metric' }));
    runs.forEach(function (r) { add(tr, h('th', { class: 'num', text: r.label })); });
    add(tbl, tr);
    Object.keys(ref.metrics).forEach(function (m) {
      var row = h('tr', {}, h('td', { text: metricLabel(ref, m) }));
      runs.forEach(function (r, ri) { var t = taskOf(ri, name); add(row, h('td', { class: 'num', text: t ? fmtCI(t.metrics[m], 3) + ' (n=' + (t.metrics[m] ? t.metrics[m].n : '–') + ')' : '–' })); });
      add(tbl, row);
    });
    return tbl;
  }

  function flatten(obj, prefix, out) {
    Object.keys(obj || {}).forEach(function (k) {
      var v = obj[k], key = prefix ? prefix + '.' + k : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
      else out.push([key, Array.isArray(v) ? v.map(function (x) { return typeof x === 'number' ? fmt(x, 3) : String(x); }).join(', ') : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fmt(v, 4)) : String(v)]);
    });
    return out;
  }

  // a judged task: who judged, and how far the verdicts can be trusted (one row per question asked)
  function judgePanel(j, run) {
    var wrap = h('div', { class: 'judge-panel' });
    add(wrap, h('h4', { text: 'Judge reliability' + (runs.length > 1 ? ' · ' + run.label : '') + ': ' + plural(j.judges.length, 'judge') + ' (' + j.judges.join(', ') + ') × ' +
      plural(j.wordings.length, 'wording') + ', ' + (j.verdicts || 0) + ' verdicts, ' + fmt(100 * (j.invalid_rate || 0), 0) + '% unreadable' }));
    add(wrap, h('p', { class: 'callout judge-verdict' + (j.asks.some(function (a) { return a.unreliable; }) ? ' item-set-warning' : ''),
      text: (j.verdict || 'No reliability problem found.') + (j.weak_judge ? ' The judge is the embedded 135M model, a weak judge: use a strong judge (--judge) for claims.' : '') }));
    var cols = [['question', null], ['kind', null], ['verdicts', 'verdicts'], ['unreadable', 'invalid_rate'], ['agreement between judges (α)', 'judge_alpha'],
      ['weighted κ', 'weighted_kappa'], ['spread over wordings', 'wording_spread'], ['position-swap consistency', 'swap_consistency'], ['picks the first shown', 'first_position_rate'],
      ['ρ with human ratings', 'human_spearman']];
    // one column per question asked, one row per measure (fits the page for any number of measures)
    var tbl = h('table', { class: 'judge-table' }, h('tr', {}, [h('th', { text: 'measure' })].concat(j.asks.map(function (a) {
      return h('th', { class: 'num' + (a.unreliable ? ' unreliable' : ''), text: a.name + ' (' + (a.kind || '?') + ')' + (a.unreliable ? ' ⚠' : '') });
    }))));
    cols.slice(2).forEach(function (c) {
      add(tbl, h('tr', { 'data-measure': c[1] }, [h('td', { text: c[0] })].concat(j.asks.map(function (a) {
        var v = a[c[1]];
        var txt = v === null || v === undefined ? 'not measured' : c[1] === 'invalid_rate' || c[1] === 'first_position_rate' ? fmt(100 * v, 0) + '%' : c[1] === 'verdicts' ? String(v) : fmt(v, 2);
        if (c[1] === 'human_spearman' && v !== null && v !== undefined && a.human_n) txt += ' (n=' + a.human_n + ')';
        return h('td', { class: 'num' + (a.unreliable ? ' unreliable' : ''), text: txt });
      }))));
    });
    add(wrap, h('div', { class: 'table-wrap' }, tbl));
    add(wrap, h('p', { class: 'note', text: 'α: Krippendorff\'s alpha between judges (' + (j.alpha_method || 'method not recorded') + '); below 0.667 the agreement is too low to support the score, 0.667–0.8 tentative. ' +
      'Position-swap consistency: share of pairwise questions answered the same way in both orders (below 0.8 the preference follows the order). "Not measured": one judge, one wording, no pairwise question or no human ratings.' }));
    return wrap;
  }

  // which label the model picks, against which label is right: a model that always says "A" shows here
  function answersPanel(t, run, name) {
    var a = t.answers, wrap = h('div', { class: 'answers-panel' });
    var who = runs.length > 1 ? ' · ' + run.label : '';
    add(wrap, h('h4', { text: 'Answer distribution' + who + ': how often each label was picked' + (a.survey ? '' : ', and how often it was right') }));
    a.sets.forEach(function (st) {
      var tbl = h('table', { class: 'answers-table' }, h('tr', {}, h('th', { text: 'label as shown' }), h('th', { class: 'num', text: 'picked' }),
        h('th', { text: '' }), a.survey ? null : h('th', { class: 'num', text: 'gold answer' }), a.survey ? null : h('th', { text: '' })));
      st.rows.forEach(function (r) {
        add(tbl, h('tr', {}, h('td', { class: 'mono', text: r.label }), h('td', { class: 'num', text: r.picked + ' (' + fmt(100 * r.picked / st.n, 0) + '%)' }),
          h('td', { class: 'bar' }, bar(r.picked / st.n)),
          a.survey ? null : h('td', { class: 'num', text: fmt(r.gold, 0) + ' (' + fmt(100 * r.gold / st.n, 0) + '%)' }),
          a.survey ? null : h('td', { class: 'bar' }, bar(r.gold / st.n, 'gold-bar'))));
      });
      add(wrap, tbl);
      var line = (a.sets.length > 1 ? 'Items labelled ' + st.labels.join('/') + ': ' : '') + run.label + ' picked "' + st.top + '" in ' +
        fmt(100 * st.top_share, 0) + '% of ' + plural(st.n, 'answer');
      if (!a.survey) line += '; "' + st.top + '" was right in ' + fmt(100 * st.top_gold, 0) + '%';
      line += st.n < SMALL_N ? ' (too few answers to tell a label preference from chance).' : !st.strong ? '.' : a.survey ? '. A strong label preference: the answer distribution may reflect where an option is shown, not an opinion.'
        : '. A strong label preference: part of the score (or of its shortfall) comes from which label the answer key uses, not from knowledge.';
      add(wrap, h('p', { class: 'note', text: line }));
    });
    add(wrap, h('p', { class: 'note', text: 'Counted by the label as shown, after any option shuffling' + (t.sweep ? ', over all prompt variants' : '') + '.' }));
    return wrap;
  }

  function renderTasks() {
    var box = clear($('task-blocks'));
    D.tasks.forEach(function (name) {
      var ref = null;
      for (var i = 0; i < runs.length && !ref; i++) ref = taskOf(i, name);
      var block = h('div', { class: 'task-block', id: 'task-' + name.replace(/[^A-Za-z0-9_-]/g, '_') });
      add(block, [h('h3', { text: name }), h('p', { class: 'muted', text: ref.description || '' })]);
      add(block, metricsTable(name));
      runs.forEach(function (r, ri) { var t = taskOf(ri, name); if (t && t.judge) add(block, judgePanel(t.judge, r)); });
      runs.forEach(function (r, ri) { var t = taskOf(ri, name); if (t && t.answers) add(block, answersPanel(t, r, name)); });
      // the task's own analyses state their verdicts in words (e.g. nationality vs rewording variation)
      runs.forEach(function (r, ri) {
        var t = taskOf(ri, name);
        (t && t.extra_verdicts || []).forEach(function (line) {
          add(block, h('p', { class: 'callout extra-verdict', text: (runs.length > 1 ? r.label + ': ' : '') + line }));
        });
      });
      var extras = [];
      runs.forEach(function (r, ri) { var t = taskOf(ri, name); if (t && t.extra && Object.keys(t.extra).length) extras.push([r.label, flatten(t.extra, '', [])]); });
      extras.forEach(function (e) {
        var tbl = h('table', { class: 'kv' }, h('tr', {}, h('th', { text: 'task-level metric' + (runs.length > 1 ? ' (' + e[0] + ')' : '') }), h('th', { class: 'num', text: 'value' })));
        e[1].slice(0, 60).forEach(function (kv) { add(tbl, h('tr', {}, h('td', { text: kv[0] }), h('td', { class: 'num', text: kv[1] }))); });
        add(block, tbl);
      });
      var m = ref.metric, dims = [];
      runs.forEach(function (r, ri) { var t = taskOf(ri, name); (t ? t.breakdowns : []).forEach(function (b) { if (dims.indexOf(b.dim) < 0) dims.push(b.dim); }); });
      var grid = h('div', { class: 'grid2' });
      dims.forEach(function (dim) {
        var label = dim, names = [];
        runs.forEach(function (r, ri) {
          var t = taskOf(ri, name), b = t && t.breakdowns.filter(function (x) { return x.dim === dim; })[0];
          if (b) { label = b.label; b.rows.forEach(function (g) { if (names.indexOf(g.name) < 0) names.push(g.name); }); }
        });
        var rows = names.map(function (n) {
          return { label: n, values: runs.map(function (r, ri) {
            var t = taskOf(ri, name), b = t && t.breakdowns.filter(function (x) { return x.dim === dim; })[0];
            var g = b && b.rows.filter(function (x) { return x.name === n; })[0];
            return metricValues(g, m) ? Object.assign({ n: g.n }, metricValues(g, m)) : null;
          }) };
        });
        if (!rows.length || !m) return;
        var title = name + ': ' + metricLabel(ref, m) + ' by ' + label.toLowerCase();
        add(grid, h('figure', { class: 'chart' }, h('figcaption', { class: 'chart-title', text: title }),
          forest({ width: 560, labelW: 140, id: 'bd-' + name + '-' + dim, title: title, xlabel: metricLabel(ref, m) + ' (95% CI)', rows: rows, series: runs.map(function (r) { return r.label; }), ref: ref.metrics[m] ? ref.metrics[m].mean : null, lines: chanceLines(ref, m) })));
      });
      add(block, grid);
      if (!dims.length) add(block, h('p', { class: 'note', text: 'No subset or topic breakdown recorded for this task.' }));
      add(box, block);
    });
  }

  // ---------- stability ----------
  function heatmap(hm, metricName, title) {
    var nV = hm.variants.length, nC = hm.countries.length;
    var cell = Math.max(14, Math.min(34, Math.floor(640 / Math.max(1, nV)))), rowH = 16, labelW = 170, top = 140;
    var width = Math.max(labelW + nV * cell + 140, labelW + 480), height = top + nC * rowH + 60;
    var all = [];
    hm.values.forEach(function (r) { r.forEach(function (v) { if (v !== null) all.push(v); }); });
    var dom = niceDomain(all);
    var svg = s('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'heatmap', role: 'img', 'aria-label': title, width: width });
    add(svg, s('title', { text: title }));
    hm.variants.forEach(function (v, i) {
      var x = labelW + i * cell + cell / 2;
      add(svg, s('text', { x: x, y: top - 6, 'font-size': 10, transform: 'rotate(-55 ' + x + ' ' + (top - 6) + ')', text: v.length > 26 ? v.slice(0, 25) + '…' : v }, s('title', { text: v })));
    });
    hm.countries.forEach(function (c, j) {
      add(svg, s('text', { x: labelW - 6, y: top + j * rowH + 12, 'font-size': 11, 'text-anchor': 'end', text: c }));
      hm.variants.forEach(function (v, i) {
        var val = hm.values[i][j];
        add(svg, s('rect', { x: labelW + i * cell, y: top + j * rowH, width: cell - 1, height: rowH - 1,
          fill: val === null ? '#eceef2' : viridis((val - dom[0]) / ((dom[1] - dom[0]) || 1)) }, s('title', { text: c + ' · ' + v + ': ' + fmt(val, 3) })));
      });
    });
    var ly = top + nC * rowH + 18;
    var gid = 'hm-grad-' + Math.random().toString(36).slice(2, 8);
    var grad = s('linearGradient', { id: gid, x1: 0, x2: 1, y1: 0, y2: 0 });
    VIRIDIS.forEach(function (c, i) { add(grad, s('stop', { offset: (i / (VIRIDIS.length - 1) * 100) + '%', 'stop-color': c })); });
    add(svg, [s('defs', {}, grad), s('rect', { x: labelW, y: ly, width: 200, height: 10, fill: 'url(#' + gid + ')' }),
      s('text', { x: labelW - 6, y: ly + 9, 'font-size': 10, 'text-anchor': 'end', text: fmt(dom[0], 2) }),
      s('text', { x: labelW + 206, y: ly + 9, 'font-size': 10, text: fmt(dom[1], 2) + '  ' + metricName + ' (grey: no data)' }),
      s('text', { x: labelW, y: ly + 30, 'font-size': 11, text: 'columns: prompt variants · rows: countries' })]);
    return svg;
  }

  function renderStability() {
    var box = clear($('stability-blocks')), any = false;
    runs.forEach(function (r, ri) {
      Object.keys(r.tasks).forEach(function (name) {
        var t = r.tasks[name], sw = t.sweep;
        var rob = r.robustness && r.robustness.tasks ? r.robustness.tasks[name] : null;
        if (!sw && !(rob && rob.n_variants > 1)) return;
        any = true;
        var block = h('div', { class: 'task-block' }, h('h3', { text: name + (runs.length > 1 ? ' · ' + r.label : '') }));
        if (rob && rob.verdicts && rob.verdicts.length) add(block, h('ul', { class: 'verdicts' }, rob.verdicts.map(function (v) { return h('li', { text: v }); })));
        if (sw) {
          var m = sw.metric;
          var title = name + ': ' + metricLabel(t, m) + ' under each prompt variant';
          add(block, h('figure', { class: 'chart' }, h('figcaption', { class: 'chart-title', text: title }),
            forest({ labelW: 320, id: 'variants-' + ri + '-' + name, title: title, xlabel: metricLabel(t, m) + ' (95% CI)', series: [r.label],
              rows: sw.variants.map(function (v) { return { label: v.name, values: [v.metrics[m] ? Object.assign({ n: v.n }, v.metrics[m]) : null] }; }),
              ref: t.metrics[m] ? t.metrics[m].mean : null, refLabel: 'primary variant', lines: chanceLines(t, m) })));
          var stats = h('table', {}, h('tr', {}, h('th', { text: 'measure' }), h('th', { class: 'num', text: 'value' }), h('th', { text: 'meaning' })));
          function srow(a, b, c) { add(stats, h('tr', {}, h('td', { text: a }), h('td', { class: 'num', text: b }), h('td', { class: 'tag', text: c })));}
          srow('item flip rate', sw.flip.rate === null ? '–' : fmt(100 * sw.flip.rate, 1) + '% of ' + sw.flip.items,
            'items whose parsed answer is not the same under every variant');
          if (rob && rob.items && rob.items.consistency) srow('consistency', fmtCI(rob.items.consistency, 3), 'share of items answered identically under every variant');
          if (rob && rob.items && rob.items.robust) srow('robust score', fmtCI(rob.items.robust, 3), 'share right under every variant (worst case)');
          if (rob && rob.spread) srow('spread of scores', fmt(rob.spread.min, 3) + '–' + fmt(rob.spread.max, 3) + ' (SD ' + fmt(rob.spread.sd, 3) + ')', 'across ' + rob.spread.n_variants + ' variants');
          if (rob && rob.country_ranking && rob.country_ranking.flip_rate !== undefined && rob.country_ranking.flip_rate !== null)
            srow('country-pair flip rate', fmt(100 * rob.country_ranking.flip_rate, 1) + '%', 'country-pair orderings that reverse between variants (Kendall τ min ' + fmt(rob.country_ranking.tau_min, 2) + ')');
          if (rob && rob.items && rob.items.variants_differ && rob.items.variants_differ.p !== null && rob.items.variants_differ.p !== undefined)
            srow('variants differ?', 'p=' + fmt(rob.items.variants_differ.p, 4), rob.items.variants_differ.test || '');
          add(block, [h('h4', { text: 'Flip rate and consistency' }), stats]);
          if (sw.effects.length) {
            var eff = h('table', {}, h('tr', {}, h('th', { text: 'factor' }), h('th', { text: 'level' }), h('th', { class: 'num', text: 'mean ' + m }),
              h('th', { class: 'num', text: 'Δ vs ' + 'primary level' }), h('th', { class: 'num', text: 'variants' }), h('th', { class: 'num', text: 'share of variance' })));
            sw.effects.forEach(function (e) {
              var share = rob && rob.variance && rob.variance.factors && rob.variance.factors[e.factor] ? rob.variance.factors[e.factor].share : null;
              e.levels.forEach(function (l, li) {
                add(eff, h('tr', {}, h('td', { text: li === 0 ? e.factor : '' }), h('td', { text: l.level + (l.level === e.reference ? ' (primary)' : '') }),
                  h('td', { class: 'num', text: fmt(l.mean, 3) }), h('td', { class: 'num', text: l.delta === null ? '–' : (l.delta > 0 ? '+' : '') + fmt(l.delta, 3) }),
                  h('td', { class: 'num', text: String(l.variants) }), h('td', { class: 'num', text: li === 0 && share !== null ? fmt(100 * share, 0) + '%' : '' })));
              });
            });
            add(block, [h('h4', { text: 'Factor effects (mean score per level, averaged over the other factors)' }), eff]);
          }
          if (sw.heatmap.countries.length) {
            var ht = name + ': ' + metricLabel(t, m) + ', prompt variant × country';
            add(block, h('figure', { class: 'chart' }, h('figcaption', { class: 'chart-title', text: ht }), h('div', { style: null, class: 'heatmap-wrap' }, heatmap(sw.heatmap, metricLabel(t, m), ht))));
          }
        }
        add(box, block);
      });
    });
    $('stability').hidden = !any;
    document.querySelector('a[data-section=stability]').hidden = !any;
  }

  // ---------- values / alignment (alignment.json, optional) ----------
  function genericTable(rows) {
    var cols = [];
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0 && (r[k] === null || typeof r[k] !== 'object')) cols.push(k); }); });
    var tbl = h('table', {}, h('tr', {}, cols.map(function (c) { return h('th', { text: c }); })));
    rows.slice(0, 200).forEach(function (r) {
      add(tbl, h('tr', {}, cols.map(function (c) { var v = r[c]; return h('td', { class: typeof v === 'number' ? 'num' : null, text: typeof v === 'number' ? fmt(v, 3) : v === null || v === undefined ? '' : String(v) }); })));
    });
    return tbl;
  }
  function renderValue(key, v, depth) {
    if (v === null || v === undefined) return null;
    if (Array.isArray(v)) {
      if (!v.length) return null;
      if (typeof v[0] === 'object' && v[0] !== null && !Array.isArray(v[0])) return h('div', {}, h('h4', { text: key }), genericTable(v));
      if (typeof v[0] === 'string' && v.join('').length > 120) return h('div', {}, h('h4', { text: key }), h('ul', { class: 'verdicts' }, v.map(function (x) { return h('li', { text: String(x) }); })));
      return h('p', { class: 'kv' }, h('strong', { text: key + ': ' }), v.map(function (x) { return typeof x === 'number' ? fmt(x, 3) : String(x); }).join(', '));
    }
    if (typeof v === 'object') {
      var keys = Object.keys(v);
      if (!keys.length) return null;  // an empty record says nothing: no bare heading
      if (depth > 3) return h('p', { class: 'kv' }, h('strong', { text: key + ': ' }), JSON.stringify(v).slice(0, 300));
      // a map of name -> flat object: one table row per name
      var flat = keys.length > 1 && keys.every(function (k) { var x = v[k]; return x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).every(function (kk) { return x[kk] === null || typeof x[kk] !== 'object'; }); });
      if (flat) return h('div', {}, h('h4', { text: key }), genericTable(keys.map(function (k) { return Object.assign({ name: k }, v[k]); })));
      return h('div', { class: depth ? 'kv' : null }, h(depth ? 'h4' : 'h3', { text: key }), keys.map(function (k) { return renderValue(k, v[k], depth + 1); }));
    }
    return h('p', { class: 'kv' }, h('strong', { text: key + ': ' }), typeof v === 'number' ? fmt(v, 4) : String(v));
  }
  function ciOf(x) { return x && typeof x === 'object' ? { mean: x.mean, lo: x.ci ? x.ci[0] : x.lo, hi: x.ci ? x.ci[1] : x.hi, n: x.n } : null; }

  // what the nearest-countries table supports, from one rule: compare each country's interval with
  // the similarity that evenly spread (uniform) answers would reach with that same country
  function alignmentVerdict(rows) {
    var withU = rows.filter(function (r) { return typeof r.uniform === 'number' && r.ci; });
    var above = withU.filter(function (r) { return r.ci[0] > r.uniform; }).map(function (r) { return r.country; });
    var below = withU.filter(function (r) { return r.ci[1] < r.uniform; }).length;
    var best = rows[0], out;
    if (withU.length && !above.length) {
      out = 'No country is matched better than evenly spread answers would match it (' + below + ' of ' + withU.length +
        ' significantly worse): the ranking reflects the model\'s answer style more than alignment with any country.';
    } else if (above.length) {
      out = 'Better than evenly spread answers for ' + plural(above.length, 'country') + ': ' + above.slice(0, 8).join(', ') + (above.length > 8 ? '…' : '') + '.';
    } else {
      out = 'No uniform baseline for this metric.';
    }
    if (best && best.rank_ci && best.rank_ci[1] > 1) out += ' The nearest country is not determined: ' + best.country + '\'s rank 95% interval is ' + best.rank_ci[0] + '–' + best.rank_ci[1] + '.';
    return out;
  }

  // how much of the answer distribution is presentation, per condition (alignment averages it away)
  function biasSection(b) {
    var conds = Object.keys(b);
    if (!conds.length) return null;
    var wrap = h('div', { class: 'bias-section' }, h('h4', { text: 'Position bias removed before comparing with human answers' }));
    var tbl = h('table', { class: 'bias-table' }, h('tr', {}, ['condition', 'presentations', 'mean change of the distribution (TV)', 'extra share on the first option shown', 'on the last'].map(function (x, i) {
      return h('th', { class: i ? 'num' : null, text: x });
    })));
    conds.forEach(function (c) {
      var r = b[c] || {};
      add(tbl, h('tr', {}, h('td', { text: c === 'unsteered' ? 'no persona' : c }), h('td', { class: 'num', text: String(Object.keys(r.variants || {}).length) }),
        h('td', { class: 'num', text: fmt(r.mean_tv, 3) }), h('td', { class: 'num', text: typeof r.first_position_excess === 'number' ? fmt(100 * r.first_position_excess, 1) + ' pp' : '–' }),
        h('td', { class: 'num', text: typeof r.last_position_excess === 'number' ? fmt(100 * r.last_position_excess, 1) + ' pp' : '–' })));
    });
    add(wrap, h('div', { class: 'table-wrap' }, tbl));
    add(wrap, h('p', { class: 'note', text: 'The model\'s answers are averaged over the presentations (option orders, label styles) of each question before they are compared with survey data. ' +
      'TV: mean total-variation distance of one presentation\'s answer distribution from that average (0 = presentation changes nothing). Extra share: probability on the option shown first (last) beyond its presentation-averaged probability, in percentage points.' }));
    return wrap;
  }

  var VSM_DIMS = ['PDI', 'IDV', 'MAS', 'UAI', 'LTO', 'IVR'];
  var VSM_NAMES = { PDI: 'power distance', IDV: 'individualism', MAS: 'masculinity', UAI: 'uncertainty avoidance', LTO: 'long-term orientation', IVR: 'indulgence' };
  // Hofstede's VSM 2013: the model's six indices per condition, and their agreement across countries with the published scores
  function vsmSection(v) {
    var wrap = h('div', { class: 'vsm-section' });
    var conds = v.conditions || {}, ids = Object.keys(conds);
    add(wrap, h('h4', { text: 'Hofstede dimensions (VSM 2013 indices) per condition' }));
    var tbl = h('table', { class: 'vsm-table' }, h('tr', {}, [h('th', { text: 'asked as' })].concat(VSM_DIMS.map(function (d) {
      return h('th', { class: 'num', text: d, title: VSM_NAMES[d] });
    }))));
    ids.forEach(function (id) {
      var c = conds[id], idx = c.indices || {};
      var who = c.style ? c.target + ' (' + c.style + ' persona)' : 'no persona';
      add(tbl, h('tr', {}, [h('td', { text: who })].concat(VSM_DIMS.map(function (d) {
        var sd = c.presentation_sd && c.presentation_sd[d];
        return h('td', { class: 'num', text: fmt(idx[d], 1) + (typeof sd === 'number' ? ' ± ' + fmt(sd, 1) : '') });
      }))));
    });
    add(wrap, h('div', { class: 'table-wrap' }, tbl));
    var notes = [VSM_DIMS.map(function (d) { return d + ' = ' + VSM_NAMES[d]; }).join(', ') + '. ' + (v.constants ? 'Constants: ' + v.constants + '. ' : '') +
      'Only differences between rows carry meaning; ± is the spread over prompt presentations where the run varied them.'];
    if (!ids.some(function (id) { return conds[id].style; })) notes.push('Without a persona these are the model\'s own indices, not any country\'s: run with --persona typical:@item to compare countries with Hofstede\'s published scores.');
    notes.forEach(function (n) { add(wrap, h('p', { class: 'note', text: n })); });
    Object.keys(v.styles || {}).forEach(function (style) {
      var e = v.styles[style], hof = e.hofstede;
      if (!hof) return;
      add(wrap, h('h4', { text: 'Agreement with Hofstede\'s published scores across ' + plural((e.countries || []).length, 'country') + ' (' + style + ' persona)' }));
      var ht = h('table', { class: 'vsm-hofstede' }, h('tr', {}, ['dimension', 'countries', 'Spearman ρ [95% CI]', 'p (permutation)', 'pairs in the same order', 'country spread ÷ wording spread'].map(function (x, i) {
        return h('th', { class: i ? 'num' : null, text: x });
      })));
      VSM_DIMS.forEach(function (d) {
        var r = (hof.dimensions || {})[d] || {}, ratio = (e.country_sd_over_presentation_sd || {})[d];
        add(ht, h('tr', {}, h('td', { text: d + ' (' + VSM_NAMES[d] + ')' }), h('td', { class: 'num', text: String((r.countries || []).length) }),
          h('td', { class: 'num', text: fmt(r.spearman, 2) + (r.spearman_ci ? ' [' + fmt(r.spearman_ci[0], 2) + ', ' + fmt(r.spearman_ci[1], 2) + ']' : '') }),
          h('td', { class: 'num', text: fmt(r.p_spearman, 3) }), h('td', { class: 'num', text: typeof r.pair_agreement === 'number' ? fmt(100 * r.pair_agreement, 0) + '% of ' + r.pairs : '–' }),
          h('td', { class: 'num', text: fmt(ratio, 2) })));
      });
      add(wrap, ht);
      var ov = hof.overall || {};
      add(wrap, h('p', { class: 'note', text: 'Overall (each dimension centred across countries): Pearson r ' + fmt(ov.pearson, 2) + ' over ' + (ov.n || 0) + ' country-dimension pairs. ' +
        'Spearman ρ: do the countries rank on the dimension as in Hofstede\'s data (1 same order, 0 unrelated, −1 reversed); with few countries its interval is wide or missing. ' +
        'Country spread ÷ wording spread below 1: the persona moves the index less than rewording the prompt does.' +
        ((e.missing_in_hofstede || []).length ? ' Not in Hofstede\'s table: ' + e.missing_in_hofstede.join(', ') + '.' : '') }));
    });
    return wrap;
  }

  function alignmentTask(name, t, run, ri) {
    var block = h('div', { class: 'task-block' }, h('h3', { text: name + (runs.length > 1 ? ' · ' + run.label : '') }));
    if (t.error || t.note) add(block, h('p', { class: 'note', text: String(t.error || t.note) }));
    var metric = t.metric, mname = t.metric_name || metric || 'similarity';
    add(block, h('p', { class: 'muted', text: [t.kind ? 'kind: ' + t.kind : '', t.samples !== undefined ? t.samples + ' samples' : '',
      t.invalid ? t.invalid + ' invalid' : '', metric ? 'similarity: ' + mname + ' (1 = identical to the country\'s human answers)' : '']
      .filter(function (x) { return x; }).join(' · ') }));
    var done = { kind: 1, samples: 1, invalid: 1, metric: 1, metric_name: 1, note: 1, error: 1, presentations: 1, conditions: 1, heldout_countries: 1 };
    var conds = t.by_condition || {};
    Object.keys(conds).forEach(function (cid) {
      var c = conds[cid], tables = c.countries || {};
      var m = tables[metric] ? metric : Object.keys(tables)[0];
      var rows = (tables[m] || []).slice().sort(function (a, b) { return (b.sim || 0) - (a.sim || 0); });
      if (!rows.length) return;
      var title = name + ': nearest countries' + (cid === 'unsteered' ? '' : ' when steered (' + cid + ')') + ' — ' + (m === metric ? mname : m);
      var top = rows.slice(0, 25);
      add(block, h('figure', { class: 'chart' }, h('figcaption', { class: 'chart-title', text: title }),
        forest({ id: 'align-' + ri + '-' + name + '-' + cid, title: title, xlabel: 'similarity to the country\'s survey answers (' + (m === metric ? mname : m) + '), 95% CI',
          series: [run.label], rows: top.map(function (r) { return { label: (r.rank ? r.rank + '. ' : '') + r.country, values: [{ mean: r.sim, lo: r.ci ? r.ci[0] : null, hi: r.ci ? r.ci[1] : null, n: r.n }] }; }),
          ref: top.length && top[0].uniform !== undefined && top[0].uniform !== null ? top[0].uniform : null, refLabel: top.length ? 'uniform answers (baseline for ' + top[0].country + ')' : 'uniform answers' }),
        h('p', { class: 'note', text: c.questions + ' questions. Top ' + top.length + ' of ' + rows.length + ' countries. P(nearest) = share of bootstrap resamples in which the country is the closest. ' +
          'Normalised: (similarity − uniform) / (1 − uniform); below 0, the model is farther from the country than evenly spread answers would be.' })));
      add(block, h('p', { class: 'callout align-verdict', text: alignmentVerdict(rows) }));
      var tbl = h('table', { class: 'align-table' }, h('tr', {}, ['rank', 'country', 'similarity [95% CI]', 'normalised', 'uniform baseline', 'P(nearest)', 'rank 95% interval'].map(function (x, i) {
        return h('th', { class: i === 1 ? null : 'num', text: x });
      })));
      rows.slice(0, 10).forEach(function (r) {
        add(tbl, h('tr', {}, h('td', { class: 'num', text: String(r.rank || '') }), h('td', { text: r.country }),
          h('td', { class: 'num', text: fmtCI(ciOf({ mean: r.sim, ci: r.ci }), 3) }), h('td', { class: 'num', text: fmt(r.normalised, 3) }),
          h('td', { class: 'num', text: fmt(r.uniform, 3) }), h('td', { class: 'num', text: r.p_nearest === undefined ? '–' : fmt(100 * r.p_nearest, 0) + '%' }),
          h('td', { class: 'num', text: r.rank_ci ? r.rank_ci[0] + '–' + r.rank_ci[1] : '–' })));
      });
      add(block, tbl);
    });
    if (Object.keys(conds).length) done.by_condition = 1;
    if (t.vsm && typeof t.vsm === 'object') { done.vsm = 1; add(block, vsmSection(t.vsm)); }
    if (t.bias_removed && typeof t.bias_removed === 'object') { done.bias_removed = 1; add(block, biasSection(t.bias_removed)); }
    var st = t.steering;
    if (st && st.styles) {
      done.steering = 1;
      add(block, h('h4', { text: 'Steerability: does a persona prompt move the answers toward the named country?' }));
      Object.keys(st.styles).forEach(function (style) {
        var splits = st.styles[style].splits || {};
        Object.keys(splits).forEach(function (split) {
          var sp = splits[split], targets = sp.targets || {};
          var sum = (sp.summary || {}).all || {};
          var line = 'Persona style ' + style + (split !== 'all' ? ', ' + split + ' questions' : '') + ' (' + sp.questions + ' questions): ';
          var bits = [];
          if (sum.gain) bits.push('mean gain ' + fmtCI(ciOf(sum.gain), 3));
          if (sum.specificity) bits.push('specificity ' + fmtCI(ciOf(sum.specificity), 3));
          if (sum.top1 !== undefined) bits.push(fmt(100 * sum.top1, 0) + '% of targets are best matched by their own persona');
          add(block, h('p', {}, h('strong', { text: line }), bits.join('; ') || '–'));
          var tbl = h('table', {}, h('tr', {}, ['target country', 'aligned when steered', 'unsteered', 'gain [95% CI]', 'specificity [95% CI]', 'best-matching persona'].map(function (x, i) {
            return h('th', { class: i ? 'num' : null, text: x });
          })));
          Object.keys(targets).forEach(function (x) {
            var r = targets[x];
            add(tbl, h('tr', {}, h('td', { text: x + (r.heldout_country ? ' (held out)' : '') }), h('td', { class: 'num', text: fmtCI(ciOf(r.aligned), 3) }),
              h('td', { class: 'num', text: fmtCI(ciOf(r.unsteered), 3) }), h('td', { class: 'num', text: fmtCI(ciOf(r.gain), 3) }),
              h('td', { class: 'num', text: fmtCI(ciOf(r.specificity), 3) }), h('td', { class: 'num', text: r.best_steer || '–' })));
          });
          add(block, tbl);
        });
      });
      add(block, h('p', { class: 'note', text: 'Gain: alignment with a country when the prompt names it minus alignment without a persona. Specificity: alignment with the named country minus mean alignment with it under the other personas.' }));
    }
    Object.keys(t).forEach(function (k) { if (!done[k]) add(block, renderValue(k.replace(/_/g, ' '), t[k], 1)); });
    return block;
  }

  function renderAlignment() {
    var box = clear($('alignment-blocks')), any = false;
    runs.forEach(function (r, ri) {
      var a = r.alignment;
      if (!a || typeof a !== 'object') return;
      var tasks = a.tasks && typeof a.tasks === 'object' ? a.tasks : null;
      if (!tasks) { any = true; add(box, h('div', { class: 'task-block' }, renderValue('alignment · ' + r.label, a, 0))); return; }
      Object.keys(tasks).forEach(function (name) {
        any = true;
        var t = tasks[name];
        try { add(box, alignmentTask(name, t || {}, r, ri)); } catch (err) {
          add(box, h('div', { class: 'task-block' }, renderValue(name, t, 0)));  // unknown shape: show it generically
        }
      });
    });
    $('alignment').hidden = !any;
    document.querySelector('a[data-section=alignment]').hidden = !any;
  }

  // ---------- comparison ----------
  function renderComparison() {
    var box = clear($('comparison-blocks'));
    var any = runs.length > 1;
    if (any) {
      (D.comparisons || []).forEach(function (c) {
        var a = runs[c.a], b = runs[c.b];
        var block = h('div', { class: 'task-block' }, h('h3', { text: 'A = ' + a.label + ' vs B = ' + b.label + ' (differences are A − B)' }));
        if (!c.result) { add(block, h('p', { class: 'note', text: 'No paired comparison: ' + (c.error || 'unavailable') })); add(box, block); return; }
        Object.keys(c.result.tasks || {}).forEach(function (name) {
          var t = c.result.tasks[name];
          var st = (c.item_sets || {})[name];
          add(block, h('h4', { text: name + ' · ' + t.metric + ' · paired on ' + t.pairing + (st ? ' · ' + st.shared + ' shared items' + (st.same ? '' : ' (A scored ' + st.a + ', B ' + st.b + ')') : '') }));
          var tbl = h('table', { class: 'compare-table' }, h('tr', {}, ['group', 'n', 'A: ' + c.result.a, 'B: ' + c.result.b, 'A − B [95% CI]', 'p', 'p (Holm)', '', 'note'].map(function (x, i) {
            return h('th', { class: i > 0 && i < 7 ? 'num' : null, text: x });
          })));
          (t.rows || []).forEach(function (row) {
            var p = row.group === 'all' ? row.p : row.p_holm;
            add(tbl, h('tr', {}, h('td', { text: row.group === 'all' ? 'all shared items' : row.group }), h('td', { class: 'num', text: String(row.n) }),
              h('td', { class: 'num', text: fmt(row.a, 3) }), h('td', { class: 'num', text: fmt(row.b, 3) }),
              h('td', { class: 'num', text: (row.diff > 0 ? '+' : '') + fmt(row.diff, 3) + ' [' + fmt(row.ci[0], 3) + ', ' + fmt(row.ci[1], 3) + ']' }),
              h('td', { class: 'num', text: fmt(row.p, 4) }), h('td', { class: 'num', text: fmt(row.p_holm, 4) }),
              h('td', { class: 'sig', text: sigMark(p) }), h('td', { class: 'tag', text: row.note || '' })));
          });
          add(block, tbl);
        });
        add(block, h('p', { class: 'note', text: 'A = ' + c.result.a + ', B = ' + c.result.b + '. Marks: * p<0.05, ** p<0.01, *** p<0.001 (country rows Holm-adjusted). Tests: McNemar for 0/1 scores, paired permutation otherwise.' }));
        add(box, block);
      });
    }
    $('comparison').hidden = !any;
    document.querySelector('a[data-section=comparison]').hidden = !any;
  }

  // ---------- improve: before / after of a fine-tuned model ----------
  function signed(x, nd) { return x === null || x === undefined ? '–' : (x > 0 ? '+' : '') + fmt(x, nd); }
  function changeText(r, nd) {
    if (!r || r.diff === null || r.diff === undefined) return '–';
    return signed(r.diff, nd) + (r.lo === null || r.lo === undefined ? '' : ' [' + signed(r.lo, nd) + ', ' + signed(r.hi, nd) + ']');
  }
  function symDomain(rows) {
    var d = 0.05;
    rows.forEach(function (r) { [r.mean, r.lo, r.hi].forEach(function (v) { if (typeof v === 'number') d = Math.max(d, Math.abs(v)); }); });
    d = Math.ceil(d * 20) / 20;
    return [-d, d];
  }
  function changeForest(rows, id, title) {
    var vals = rows.map(function (r) { return { mean: r.diff, lo: r.lo, hi: r.hi, n: r.n }; });
    return forest({ id: id, title: title, xlabel: 'change, after − before (95% CI)', series: ['change'], ref: 0, refLabel: 'no change',
      domain: symDomain(vals), rows: rows.map(function (r, i) { return { label: r.name || r.label, values: [vals[i]], mark: sigMark(r.p_holm) }; }) });
  }
  // a world map of a change centred on 0 (red: lower after, blue: higher); hatched: n < SMALL_N
  function changeMap(rows, id, title) {
    var wrap = h('div', { class: 'map-wrap' });
    var vals = {};
    rows.forEach(function (r) { if (r.iso2 && WORLD.countries[r.iso2] && typeof r.diff === 'number') vals[r.iso2] = r; });
    var dom = symDomain(Object.keys(vals).map(function (k) { return { mean: vals[k].diff }; }));
    function color(v) { return diverging(v / (dom[1] || 1)); }
    function describe(iso, name) {
      var r = vals[iso];
      if (!r) return name + ': not in this split';
      return r.name + '\nchange ' + changeText(r, 3) + '\nbefore ' + fmt(r.b, 3) + ' → after ' + fmt(r.a, 3) + '\nn = ' + r.n + ' items' +
        (r.p_holm === null || r.p_holm === undefined ? '' : ' · p (Holm) ' + fmt(r.p_holm, 3)) + (r.small ? '\nfewer than ' + SMALL_N + ' items: a weak estimate' : '');
    }
    var svg = s('svg', { viewBox: '0 0 ' + WORLD.width + ' ' + WORLD.height, role: 'img', id: id, 'aria-label': title });
    add(svg, s('title', { text: title }));
    add(svg, s('defs', {}, s('pattern', { id: id + '-small', width: 5, height: 5, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(-45)' },
      s('line', { x1: 0, y1: 0, x2: 0, y2: 5, stroke: '#333', 'stroke-width': 1.3, 'stroke-opacity': 0.75 }))));
    var g = s('g'), markers = s('g');
    Object.keys(WORLD.countries).forEach(function (iso) {
      var c = WORLD.countries[iso], r = vals[iso];
      if (c.d) {
        var p = s('path', { d: c.d, class: 'country ' + (r ? 'has-data' : 'no-data'), fill: r ? color(r.diff) : '#e4e6ea', 'data-iso2': iso, 'data-change': r ? r.diff : null },
          s('title', { text: describe(iso, c.n) }));
        tipOn(p, function () { return describe(iso, c.n); });
        add(g, p);
        if (r && r.small) add(g, s('path', { d: c.d, class: 'country small-n', fill: 'url(#' + id + '-small)', 'pointer-events': 'none', 'data-iso2': iso }));
      }
      if (c.p && r) {
        var mk = s('circle', { cx: c.p[0], cy: c.p[1], r: 4.5, class: 'marker has-data' + (r.small ? ' small-n' : ''), fill: color(r.diff), 'data-iso2': iso,
          'stroke-dasharray': r.small ? '1.5 1.5' : null }, s('title', { text: describe(iso, c.n) }));
        tipOn(mk, function () { return describe(iso, c.n); });
        add(markers, mk);
      }
    });
    add(svg, [g, markers]);
    add(wrap, svg);
    var lw = 300, lsvg = s('svg', { width: lw + 60, height: 50, viewBox: '0 0 ' + (lw + 60) + ' 50', role: 'img', 'aria-label': 'Colour scale of the change' });
    var grad = s('linearGradient', { id: id + '-grad', x1: 0, x2: 1, y1: 0, y2: 0 });
    for (var gi = 0; gi <= 8; gi++) add(grad, s('stop', { offset: (gi / 8 * 100) + '%', 'stop-color': color(dom[0] + gi / 8 * (dom[1] - dom[0])) }));
    add(lsvg, s('defs', {}, grad));
    add(lsvg, s('text', { x: 10, y: 11, 'font-size': 11, text: 'change after − before (red: lower · white: none · blue: higher)' }));
    add(lsvg, s('rect', { x: 10, y: 17, width: lw, height: 12, fill: 'url(#' + id + '-grad)', stroke: '#888', 'stroke-width': 0.5 }));
    ticks(dom[0], dom[1], 4).forEach(function (v) {
      var x = 10 + (v - dom[0]) / (dom[1] - dom[0]) * lw;
      add(lsvg, [s('line', { x1: x, x2: x, y1: 29, y2: 33, stroke: '#555' }), s('text', { x: x, y: 44, 'font-size': 10, 'text-anchor': 'middle', text: signed(v, 2) })]);
    });
    var legend = h('div', { class: 'legend' }, lsvg);
    var nSmall = Object.keys(vals).filter(function (k) { return vals[k].small; }).length;
    if (nSmall) add(legend, h('span', { class: 'legend-small-n', text: 'hatched: fewer than ' + SMALL_N + ' items (' + nSmall + ' countries), a weak estimate' }));
    var missing = rows.filter(function (r) { return !vals[r.iso2]; }).map(function (r) { return r.name; });
    var note = h('p', { class: 'note', text: Object.keys(vals).length + ' of ' + rows.length + ' countries on the map. The colour shows the point estimate only: read the interval in the forest plot.' +
      (missing.length ? ' Not drawable: ' + missing.join(', ') + '.' : '') });
    return h('figure', { class: 'chart' }, h('figcaption', { class: 'chart-title', text: title }), wrap, legend, note);
  }
  function changeTable(rows, cols) {
    var tbl = h('table', { class: 'compare-table' }, h('tr', {}, cols.map(function (c, i) { return h('th', { class: i ? 'num' : null, text: c }); })));
    rows.forEach(function (r) {
      add(tbl, h('tr', { class: r.small ? 'small-n' : null }, h('td', { text: r.label + (r.small ? ' †' : '') }), h('td', { class: 'num', text: r.n === undefined || r.n === null ? '' : String(r.n) }),
        h('td', { class: 'num', text: fmt(r.b, 3) }), h('td', { class: 'num', text: fmt(r.a, 3) }), h('td', { class: 'num', text: changeText(r, 3) }),
        h('td', { class: 'num', text: fmt(r.p, 4) }), h('td', { class: 'tag', text: r.verdict || '' }), h('td', { class: 'tag', text: r.note || '' })));
    });
    return tbl;
  }
  function positionsTable(rows) {
    var width = rows.reduce(function (w, r) { return Math.max(w, r.gold.length); }, 0), cols = ['variant', 'n'];
    for (var i = 1; i <= width; i++) cols.push('pos ' + i + ': before → after (gold)');
    var tbl = h('table', { class: 'compare-table positions-table' }, h('tr', {}, cols.map(function (c) { return h('th', { text: c }); })));
    rows.forEach(function (r) {
      var cells = [h('td', { text: r.variant }), h('td', { class: 'num', text: String(r.n) })];
      for (var k = 0; k < width; k++) {
        var hot = r.after && r.after[k] >= 0.6;
        cells.push(h('td', { class: 'num' + (hot ? ' hot' : ''), text: (r.before ? fmt(r.before[k] * 100, 0) + '%' : '–') + ' → ' + (r.after ? fmt(r.after[k] * 100, 0) + '%' : '–') + ' (' + fmt(r.gold[k] * 100, 0) + '%)' }));
      }
      add(tbl, h('tr', {}, cells));
    });
    return tbl;
  }
  function renderImprove() {
    var box = clear($('improve-blocks')), list = D.improve || [];
    list.forEach(function (iv, k) {
      var block = h('div', { class: 'task-block improve-block', id: 'improve-' + k });
      add(block, h('h3', { text: iv.task + ': ' + iv.base_model + ' → ' + iv.after_model }));
      add(block, h('p', { class: 'muted', text: (iv.method || '').toUpperCase() + ', ' + iv.steps + ' steps on ' + iv.examples + ' training rows (' + iv.device + '); loss ' + fmt(iv.loss[0], 3) + ' → ' + fmt(iv.loss[1], 3) +
        '. Training presentations: ' + (iv.training_variants.join(', ') || '–') + '. Held-out countries: ' + (iv.heldout_countries.join(', ') || 'none') + '.' + (iv.complete ? '' : ' The loop did not finish: later stages are missing.') }));
      add(block, h('ul', { class: 'verdicts' }, iv.verdicts.map(function (v) { return h('li', { text: v }); })));
      if (iv.data_positions) {
        var dp = iv.data_positions, keys = ['chosen', 'rejected'];
        add(block, h('p', { class: 'note', text: 'Training pairs by displayed position: ' + keys.map(function (key) {
          var hh = dp[key] || {};
          return key + ' ' + Object.keys(hh).map(function (p) { return p + ': ' + hh[p]; }).join(', ');
        }).join(' · ') + '.' }));
      }
      Object.keys(iv.splits).forEach(function (key) {
        var sp = iv.splits[key], sid = 'improve-' + k + '-' + key;
        var sb = h('div', { class: 'improve-split', id: sid });
        add(sb, h('h4', { text: sp.label + ' · ' + sp.metric + ' · ' + plural(sp.items, 'item') + ' · ' + plural(sp.variants.length, 'variant') }));
        var rows = [];
        if (sp.pooled) rows.push(Object.assign({ label: 'all variants pooled' }, sp.pooled));
        if (sp.robust) rows.push(Object.assign({ label: 'robust (right under every variant)' }, sp.robust));
        if (sp.training && sp.training.train) rows.push(Object.assign({ label: 'training presentation' + (sp.training.variants.length > 1 ? 's' : '') + ' (' + sp.training.variants.join(', ') + ')' }, sp.training.train));
        if (sp.training && sp.training.other) rows.push(Object.assign({ label: 'the other ' + plural(sp.training.other_variants.length, 'presentation') }, sp.training.other));
        sp.per_variant.forEach(function (r) { if (r.diff !== null) rows.push(Object.assign({}, r, { label: 'variant ' + r.variant + (r.training ? ' (training)' : '') })); });
        add(sb, changeTable(rows, ['', 'n', 'before', 'after', 'change [95% CI]', 'p', 'verdict', 'note']));
        add(sb, h('ul', { class: 'verdicts' }, sp.verdicts.map(function (v) { return h('li', { text: v }); })));
        if (sp.countries.length) {
          add(sb, h('figure', { class: 'chart' }, h('figcaption', { class: 'chart-title', text: 'Change per country, ' + sp.label + ' (every variant pooled; * Holm p < 0.05)' }),
            changeForest(sp.countries, sid + '-forest', 'Change per country: ' + sp.label)));
          add(sb, changeMap(sp.countries, sid + '-map', 'World map of the change: ' + sp.label));
        }
        if (sp.positions.length) {
          add(sb, h('h5', { text: 'Position check: share of answers at each displayed position, before → after (share of gold answers there)' }));
          add(sb, positionsTable(sp.positions));
          add(sb, h('p', { class: 'note', text: 'A model that moved its answers to one position (highlighted: 60% or more) scores the share of gold answers that sit there, without knowing more.' }));
        }
        add(block, sb);
      });
      if (iv.transfer) {
        var tb = h('div', { class: 'improve-transfer' }, h('h4', { text: 'Transfer: ' + iv.transfer.task + ' (not trained on' + (iv.transfer.limit ? ', limit ' + iv.transfer.limit : '') + ')' }));
        if (iv.transfer.skipped) add(tb, h('p', { class: 'note', text: 'skipped: ' + iv.transfer.skipped }));
        iv.transfer.tasks.forEach(function (t) {
          add(tb, changeTable(t.rows.map(function (r) { return Object.assign({}, r, { label: r.group === 'all' ? 'all items' : r.group, p: r.group === 'all' ? r.p : r.p_holm }); }),
            ['group', 'n', 'before', 'after', 'change [95% CI]', 'p (Holm for groups)', '', 'note']));
        });
        add(block, tb);
      }
      if (iv.control) {
        var c = iv.control;
        add(block, h('div', { class: 'improve-control' }, h('h4', { text: 'Control cost: ' + (c.name || '') }),
          h('p', { text: c.skipped ? 'skipped: ' + c.skipped : (c.metric + ': ' + fmt(c.b, 4) + ' → ' + fmt(c.a, 4) + ', change ' + changeText(c, 4) + ' on ' + c.n + ' problems, p=' + fmt(c.p, 4) + ': ' + c.verdict) })));
      }
      add(box, block);
    });
    $('improve').hidden = !list.length;
    document.querySelector('a[data-section=improve]').hidden = !list.length;
  }

  // ---------- Lost in Cultural Translation and cross-lingual consistency ----------
  function ciForest(rows, id, title, xlabel, series, ref, refLabel) {
    return forest({ id: id, title: title, xlabel: xlabel, series: series, ref: ref, refLabel: refLabel,
      domain: ref === 0 ? symDomain(rows.reduce(function (acc, r) { return acc.concat(r.values); }, [])) : undefined, rows: rows });
  }
  function renderTranslation() {
    var box = clear($('translation-blocks')), any = false;
    runs.forEach(function (run, ri) {
      Object.keys(run.tasks).forEach(function (name) {
        var lv = run.tasks[name].lict;
        if (!lv) return;
        any = true;
        var block = h('div', { class: 'task-block lict-block', id: 'lict-' + ri });
        add(block, h('h3', { text: 'Lost in Cultural Translation · ' + run.label + ' · ' + name }));
        Object.keys(lv.paired).forEach(function (metric) {
          var rows = lv.paired[metric];
          if (!rows.length) return;
          add(block, h('h4', { text: metric + ': the original GSM8K problems vs each culture\'s version of the same problems' }));
          var tbl = h('table', { class: 'compare-table' }, h('tr', {}, ['culture', 'n', 'original [95% CI]', 'culture [95% CI]', 'change [95% CI]', 'original only / culture only', 'p (McNemar)', 'p (Holm)', ''].map(function (x, i) {
            return h('th', { class: i ? 'num' : null, text: x });
          })));
          rows.forEach(function (r) {
            add(tbl, h('tr', { class: r.small ? 'small-n' : null }, h('td', { text: r.culture + (r.small ? ' †' : '') }), h('td', { class: 'num', text: String(r.n) }),
              h('td', { class: 'num', text: fmtCI(r.original, 3) }), h('td', { class: 'num', text: fmtCI(r.culture_acc, 3) }),
              h('td', { class: 'num', text: r.diff.flat ? signed(r.diff.mean, 3) + ' [no discordant pair]' : signed(r.diff.mean, 3) + ' [' + signed(r.diff.lo, 3) + ', ' + signed(r.diff.hi, 3) + ']' }),
              h('td', { class: 'num', text: r.original_only + ' / ' + r.culture_only }),
              h('td', { class: 'num', text: fmt(r.p, 4) }), h('td', { class: 'num', text: fmt(r.p_holm, 4) }), h('td', { class: 'sig', text: sigMark(r.p_holm) })));
          });
          add(block, tbl);
          add(block, ciForest(rows.map(function (r) { return { label: r.culture, values: [r.original, r.culture_acc] }; }), 'lict-' + ri + '-' + metric,
            metric + ': original vs culture', metric + ' (95% Wilson CI)', ['original', 'culture'], null, null));
        });
        add(block, h('p', { class: 'note', text: 'Paired on the same problems: McNemar (exact below 25 discordant pairs), Holm-adjusted over the cultures (* p<0.05). The change interval is a Wald interval from the discordant counts. † n < ' + SMALL_N + '.' }));
        add(box, block);
      });
      var cl = run.crosslingual;
      if (!cl) return;
      any = true;
      var cb = h('div', { class: 'task-block crosslingual-block', id: 'crosslingual-' + ri });
      add(cb, h('h3', { text: 'Cross-lingual consistency · ' + run.label + ' · ' + cl.task + ' · variant ' + cl.variant + ' · prompts ' + cl.prompts.join(', ') }));
      var all = cl.all ? [cl.all] : [];
      var tbl = h('table', { class: 'compare-table' }, h('tr', {}, ['region', 'language', 'questions', 'local [95% CI]', 'English [95% CI]', 'agreement [95% CI]', 'local − English [95% CI]', 'p', 'p (Holm)', ''].map(function (x, i) {
        return h('th', { class: i > 1 ? 'num' : null, text: x });
      })));
      cl.regions.concat(all).forEach(function (r) {
        add(tbl, h('tr', { class: r.small ? 'small-n' : null }, h('td', { text: r.name + (r.small ? ' †' : '') }), h('td', { text: r.language || '' }), h('td', { class: 'num', text: String(r.n) }),
          h('td', { class: 'num', text: fmtCI(r.local, 3) }), h('td', { class: 'num', text: fmtCI(r.english, 3) }), h('td', { class: 'num', text: fmtCI(r.agreement, 3) }),
          h('td', { class: 'num', text: signed(r.diff.mean, 3) + ' [' + signed(r.diff.lo, 3) + ', ' + signed(r.diff.hi, 3) + ']' }),
          h('td', { class: 'num', text: fmt(r.p, 4) }), h('td', { class: 'num', text: fmt(r.p_holm, 4) }), h('td', { class: 'sig', text: sigMark(r.p_holm) })));
      });
      add(cb, tbl);
      add(cb, ciForest(cl.regions.map(function (r) { return { label: r.name, values: [r.local, r.english, r.agreement] }; }), 'crosslingual-' + ri + '-forest',
        'Local language vs English per region', 'share (95% CI)', ['local', 'English', 'agreement'], null, null));
      add(cb, h('p', { class: 'note', text: 'Local better (Holm p < 0.05): ' + (cl.local_better.join(', ') || 'none') + '. English better: ' + (cl.english_better.join(', ') || 'none') + '. Agreement rule: ' + cl.rule + (cl.notes.length ? ' Notes: ' + cl.notes.join(' ') : '') }));
      add(box, cb);
    });
    $('translation').hidden = !any;
    document.querySelector('a[data-section=translation]').hidden = !any;
  }

  // ---------- sample explorer ----------
  var S = null, COL = {}, T = null;
  // samples: plain JSON, or gzip+base64 for large runs (inflated with the browser's DecompressionStream)
  function loadSamples() {
    var node = $('report-samples');
    if (node.getAttribute('data-encoding') !== 'gzip+base64') return Promise.resolve(JSON.parse(node.textContent));
    if (typeof DecompressionStream === 'undefined') return Promise.reject(new Error('this browser cannot inflate the embedded samples (no DecompressionStream)'));
    var bin = atob(node.textContent.trim()), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text().then(JSON.parse);
  }
  var ex = { run: 'all', task: 'all', country: 'all', variant: 'all', outcome: 'all', q: '', page: 0 };
  var filtered = [];

  function cell(row, name) { return row[COL[name]]; }
  function tval(row, name) { var i = row[COL[name]]; return i === null || i === undefined ? null : T[name][i]; }

  function applyFilters() {
    var q = ex.q.trim().toLowerCase();
    filtered = [];
    for (var i = 0; i < S.rows.length; i++) {
      var r = S.rows[i];
      if (ex.run !== 'all' && String(cell(r, 'run')) !== ex.run) continue;
      if (ex.task !== 'all' && String(cell(r, 'task')) !== ex.task) continue;
      if (ex.country !== 'all' && String(cell(r, 'country')) !== ex.country) continue;
      if (ex.variant !== 'all' && String(cell(r, 'variant')) !== ex.variant) continue;
      var o = cell(r, 'outcome');
      if (ex.outcome === 'correct' && o !== 1) continue;
      if (ex.outcome === 'incorrect' && o !== 0) continue;
      if (ex.outcome === 'invalid' && o !== -1) continue;
      if (q) {
        var hay = (cell(r, 'item') + ' ' + (tval(r, 'prompt') || '') + ' ' + (cell(r, 'text') || '')).toLowerCase();
        if (hay.indexOf(q) < 0) continue;
      }
      filtered.push(i);
    }
    var pages = Math.max(1, Math.ceil(filtered.length / PAGE));
    if (ex.page >= pages) ex.page = pages - 1;
  }

  function renderExplorerFilters() {
    var box = clear($('explorer-filters'));
    function opts(name) {
      var counts = {};
      S.rows.forEach(function (r) { var v = r[COL[name]]; if (v !== null && v !== undefined) counts[v] = (counts[v] || 0) + 1; });
      return [['all', 'all']].concat(Object.keys(counts).sort(function (a, b) { return String(T[name][a]).localeCompare(String(T[name][b])); })
        .map(function (k) { return [k, T[name][k] + ' (' + counts[k] + ')']; }));
    }
    function changed(key) { return function (v) { ex[key] = v; ex.page = 0; refreshExplorer(); }; }
    if (runs.length > 1) add(box, select('Run', [['all', 'all']].concat(runs.map(function (r, i) { return [String(i), r.label]; })), ex.run, changed('run'), 'ex-run'));
    add(box, select('Task', opts('task'), ex.task, changed('task'), 'ex-task'));
    add(box, select('Country', opts('country'), ex.country, changed('country'), 'ex-country'));
    if (T.variant.length > 1) add(box, select('Variant', opts('variant'), ex.variant, changed('variant'), 'ex-variant'));
    var grp = h('span', { class: 'btn-group', role: 'group', 'aria-label': 'Outcome' });
    var allSurvey = runs.every(function (r) { return Object.keys(r.tasks).every(function (n) { return r.tasks[n].survey; }); });
    (allSurvey ? [['all', 'All'], ['invalid', 'Invalid']] : [['all', 'All'], ['correct', 'Correct'], ['incorrect', 'Incorrect'], ['invalid', 'Invalid']]).forEach(function (o) {
      var b = h('button', { type: 'button', id: 'ex-outcome-' + o[0], 'aria-pressed': ex.outcome === o[0] ? 'true' : 'false', text: o[1] });
      on(b, 'click', function () {
        ex.outcome = o[0]; ex.page = 0;
        Array.prototype.forEach.call(grp.children, function (c) { c.setAttribute('aria-pressed', c === b ? 'true' : 'false'); });
        refreshExplorer();
      });
      add(grp, b);
    });
    add(box, h('label', {}, 'Outcome', grp));
    var search = h('input', { type: 'search', id: 'ex-search', placeholder: 'search item id, prompt, answer', size: 28 });
    var timer = null;
    on(search, 'input', function () { clearTimeout(timer); timer = setTimeout(function () { ex.q = search.value; ex.page = 0; refreshExplorer(); }, 200); });
    add(box, search);
  }

  function optionLabel(row, j) {
    var order = cell(row, 'order'), labels = tval(row, 'labels');
    if (!order) return String.fromCharCode(65 + j);
    var pos = order.indexOf(j);
    if (pos < 0) return '–';
    return labels && labels[pos] ? labels[pos] : '#' + (pos + 1);
  }

  function describeAnswer(row, v) {
    var opts = tval(row, 'options');
    if (typeof v === 'number' && opts && opts[v] !== undefined) return optionLabel(row, v) + ' — ' + opts[v];
    if (v === null || v === undefined) return 'none (unparseable)';
    return String(v);
  }

  function sampleCard(idx) {
    var row = S.rows[idx];
    var o = cell(row, 'outcome'), score = cell(row, 'score');
    var task = taskOf(cell(row, 'run'), tval(row, 'task')), survey = !!(task && task.survey), human = cell(row, 'human');
    var badge = o === 1 ? ['ok', 'correct'] : o === 0 ? ['bad', 'incorrect'] : o === -1 ? ['invalid', 'invalid'] : ['na', survey ? 'survey answer' : 'unscored'];
    if (!survey && score !== null && score !== undefined && score !== 0 && score !== 1) badge[1] += ' ' + fmt(score, 2);
    var gold = cell(row, 'gold'), pred = cell(row, 'pred');
    var goldText = Array.isArray(gold) ? gold.map(function (g) { return describeAnswer(row, g); }).join('; ') : describeAnswer(row, gold);
    var goldLabel = '   gold: ';
    if (survey) {
      goldLabel = '   human reference: ';
      goldText = human ? (human.kind === 'dist' ? 'answer shares of ' : 'mean answer of ') + plural(human.of, 'country') +
        ' (nearest: ' + human.rows[0].country + ', distance ' + fmt(human.rows[0].distance, 3) + ')' : 'none per item (compared at the index level)';
      if (score !== null && score !== undefined) goldText += ' · ' + metricLabel(task, task.metric) + ' ' + fmt(score, 3);
    }
    var det = h('details', { class: 'sample', 'data-index': idx });
    var summary = h('summary', {},
      h('span', { class: 'badge ' + badge[0], text: badge[1] }),
      h('strong', { class: 'mono', text: cell(row, 'item') }),
      h('span', { class: 'tag', text: [tval(row, 'task'), tval(row, 'country'), tval(row, 'topic'), 'variant ' + tval(row, 'variant'), tval(row, 'mode')]
        .filter(function (x) { return x; }).join(' · ') + (runs.length > 1 ? ' · ' + runs[cell(row, 'run')].label : '') }),
      h('div', { class: 'answer-line' }, h('span', { class: 'tag', text: 'parsed answer: ' }), h('span', { class: 'pred', text: describeAnswer(row, pred) }),
        h('span', { class: 'tag', text: goldLabel }), h('span', { class: survey ? 'human' : 'gold', text: goldText })));
    add(det, summary);
    var filled = false;
    on(det, 'toggle', function () {
      if (!det.open || filled) return;
      filled = true;
      var body = h('div', { class: 'sample-body' });
      add(body, [h('h4', { text: 'Prompt (exactly as sent, chat template applied)' }), h('pre', { class: 'prompt', text: tval(row, 'prompt') || '' })]);
      var text = cell(row, 'text');
      if (text !== null && text !== undefined) add(body, [h('h4', { text: 'Raw response' }), h('pre', { class: 'response', text: text })]);
      var opts = tval(row, 'options'), probs = cell(row, 'probs');
      if (survey && opts && opts.length) { add(body, surveyView(row, opts, probs, human)); opts = null; }
      if (opts && opts.length) {
        var goldSet = Array.isArray(gold) ? gold : [gold];
        var tbl = h('table', { class: 'opt-table' }, h('tr', {}, h('th', { text: 'label' }), h('th', { text: 'option (original order)' }),
          h('th', { class: 'num', text: probs ? 'probability' : '' }), probs ? h('th', { text: '' }) : null, h('th', { text: '' })));
        opts.forEach(function (opt, j) {
          var p = probs ? probs[j] : null;
          var bar = null;
          if (probs) { bar = h('div', { class: 'probbar' }, h('span')); bar.firstChild.style.width = Math.round(100 * (p || 0)) + '%'; }
          add(tbl, h('tr', { class: goldSet.indexOf(j) >= 0 ? 'gold' : null },
            h('td', { class: 'mono', text: optionLabel(row, j) }), h('td', { text: opt }),
            h('td', { class: 'num', text: probs ? fmt(p, 3) : '' }), probs ? h('td', { class: 'bar' }, bar) : null,
            h('td', { text: (goldSet.indexOf(j) >= 0 ? '✓ gold ' : '') + (pred === j ? '● chosen' : '') })));
        });
        add(body, [h('h4', { text: probs ? 'Per-option probabilities' : 'Options' }), tbl]);
      }
      add(det, body);
    });
    return det;
  }

  function bar(p, cls) {
    var b = h('div', { class: 'probbar' + (cls ? ' ' + cls : '') }, h('span'));
    b.firstChild.style.width = Math.round(100 * Math.max(0, Math.min(1, p || 0))) + '%';
    return b;
  }
  // a survey answer: the model's distribution beside the human one(s), with the distance; never right or wrong
  function surveyView(row, opts, probs, human) {
    var wrap = h('div', { class: 'survey-view' });
    add(wrap, h('h4', { text: 'Model\'s answer distribution beside the human answers (no right answer)' }));
    if (human && human.kind === 'dist') {
      var tbl = h('table', { class: 'opt-table human-dist' });
      var hr = h('tr', {}, h('th', { text: 'who' }));
      opts.forEach(function (o, j) { add(hr, h('th', { text: optionLabel(row, j) + ' ' + o })); });
      add(hr, h('th', { class: 'num', text: 'distance to the model (Jensen-Shannon, 0 = same)' }));
      add(tbl, hr);
      function distRow(who, dist, d, cls) {
        var tr = h('tr', { class: cls }, h('td', { text: who }));
        opts.forEach(function (o, j) { add(tr, h('td', { class: 'bar' }, bar(dist ? dist[j] : 0, cls), h('span', { class: 'tag', text: fmt(dist ? dist[j] : null, 2) }))); });
        add(tr, h('td', { class: 'num', text: d === null ? '' : fmt(d, 3) }));
        return tr;
      }
      add(tbl, distRow('model', probs, null, 'model-dist'));
      human.rows.forEach(function (r) { add(tbl, distRow(r.country + ' (survey)', r.dist, r.distance, 'ref-dist')); });
      add(wrap, tbl);
      if (human.of > human.rows.length) add(wrap, h('p', { class: 'note', text: 'Nearest ' + human.rows.length + ' of ' + human.of + ' countries shown.' }));
    } else {
      var t2 = h('table', { class: 'opt-table human-dist' }, h('tr', {}, h('th', { text: 'option' }), h('th', { class: 'num', text: 'model probability' }), h('th', { text: '' })));
      opts.forEach(function (o, j) { add(t2, h('tr', { class: 'model-dist' }, h('td', { text: optionLabel(row, j) + ' ' + o }), h('td', { class: 'num', text: fmt(probs ? probs[j] : null, 3) }), h('td', { class: 'bar' }, bar(probs ? probs[j] : 0)))); });
      add(wrap, t2);
      if (human && human.kind === 'means') {
        var t3 = h('table', { class: 'opt-table human-means' }, h('tr', {}, h('th', { text: 'who' }), h('th', { class: 'num', text: 'mean answer position (0 = first option, 1 = last)' }), h('th', { text: '' }), h('th', { class: 'num', text: '|difference| to the model' })));
        add(t3, h('tr', { class: 'model-dist' }, h('td', { text: 'model (expected position)' }), h('td', { class: 'num', text: fmt(human.model_mean, 3) }), h('td', { class: 'bar' }, bar(human.model_mean)), h('td', { text: '' })));
        human.rows.forEach(function (r) { add(t3, h('tr', { class: 'ref-dist' }, h('td', { text: r.country + ' (survey)' }), h('td', { class: 'num', text: fmt(r.mean, 3) }), h('td', { class: 'bar' }, bar(r.mean, 'ref-dist')), h('td', { class: 'num', text: fmt(r.distance, 3) }))); });
        add(wrap, t3);
        add(wrap, h('p', { class: 'note', text: 'The human reference for this item is each country\'s mean position on the scale (the release has no per-option shares).' }));
      } else {
        add(wrap, h('p', { class: 'note', text: 'This task has no human answer per item: it is compared with human data at the level of its indices (see Values and alignment).' }));
      }
    }
    return wrap;
  }

  function refreshExplorer() {
    applyFilters();
    var list = clear($('explorer-list')), pager = clear($('explorer-pager'));
    var start = ex.page * PAGE, end = Math.min(filtered.length, start + PAGE);
    var count = $('explorer-count');
    count.textContent = filtered.length + ' of ' + S.total + ' samples match' + (filtered.length ? '; showing ' + (start + 1) + '–' + end : '');
    count.setAttribute('data-count', String(filtered.length));
    for (var i = start; i < end; i++) add(list, sampleCard(filtered[i]));
    var pages = Math.max(1, Math.ceil(filtered.length / PAGE));
    var prev = h('button', { type: 'button', id: 'ex-prev', disabled: ex.page === 0, text: '← previous' });
    var next = h('button', { type: 'button', id: 'ex-next', disabled: ex.page >= pages - 1, text: 'next →' });
    on(prev, 'click', function () { ex.page--; refreshExplorer(); });
    on(next, 'click', function () { ex.page++; refreshExplorer(); });
    add(pager, [prev, h('span', { text: 'page ' + (ex.page + 1) + ' of ' + pages }), next]);
  }

  function renderExplorer(samples) {
    S = samples; T = S.tables;
    S.columns.forEach(function (c, i) { COL[c] = i; });
    var note = [];
    if (S.prompt_cap) note.push('Large run: prompts longer than ' + S.prompt_cap + ' characters are shortened in this file (' + S.prompts_shortened + ' samples); the full text is in samples.jsonl.');
    $('explorer-note').textContent = note.join(' ');
    renderExplorerFilters();
    refreshExplorer();
  }

  // ---------- go ----------
  function main() {
    state.task = firstTaskWithCountries();
    renderSummary();
    if (state.task) renderCountries();
    renderTasks();
    renderStability();
    renderAlignment();
    renderComparison();
    renderImprove();
    renderTranslation();
    $('footer-generated').textContent = 'Generated ' + D.generated + ' by culturelens ' + D.culturelens + '.';
    $('footer-map-source').textContent = 'Map: ' + WORLD.source + '; ' + WORLD.projection + ' projection. Region = UN M49 region.';
    $('explorer-count').textContent = 'Loading samples…';
    return loadSamples().then(function (samples) {
      renderExplorer(samples);
      document.body.setAttribute('data-ready', '1');
    });
  }
  function failed(err) {
    document.body.setAttribute('data-ready', 'error');
    var p = document.createElement('p');
    p.className = 'callout';
    p.textContent = 'The report could not be drawn: ' + err;
    document.body.insertBefore(p, document.body.firstChild);
    console.error(err);
  }
  try { main().catch(failed); } catch (err) { failed(err); }
})();
