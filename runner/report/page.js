"use strict";
// Draws the run held in #run-data (written by runner/htmlreport.py). Task data (names,
// reasons, output) only ever reaches the page through textContent and setAttribute, never
// as markup. The timeline is one SVG built in one pass; the table is rendered a page at a time.
(function () {
  const D = JSON.parse(document.getElementById("run-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const OUTCOMES = ["success", "failed", "timeout", "cancelled"];
  const MARKS = {success: "\u2713", failed: "\u2717", timeout: "\u25F7", cancelled: "\u2298",
                 skipped: "\u2192", up_to_date: "="};
  const RANK = {failed: 0, timeout: 1, cancelled: 2, skipped: 3, success: 4, up_to_date: 5};
  const T = {status: 0, duration: 1, exit: 2, signal: 3, attempts: 4, reason: 5};
  const B = {task: 0, attempt: 1, slot: 2, start: 3, end: 4, outcome: 5, exit: 6, signal: 7, tail: 8};
  const PAGE = 100;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function sv(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function secs(s) {
    if (s === null || s === undefined) return "\u2013";
    return s < 10 ? s.toFixed(3) + " s" : s < 600 ? s.toFixed(1) + " s" : Math.floor(s / 60) + " min " + (s % 60).toFixed(0) + " s";
  }
  function ended(exit, signal) {
    return signal ? "signal " + signal : exit === null || exit === undefined ? "\u2013" : "exit " + exit;
  }
  function niceStep(span, ticks) {
    const raw = span / ticks, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }
  function mark(status) { return el("span", {class: "mark", "aria-hidden": "true"}, MARKS[status] || "?"); }

  // --- header ---------------------------------------------------------------------------
  const h = D.head;
  document.getElementById("run-title").textContent = "taskrun run: " + h.status;
  const runMark = document.getElementById("run-mark");
  runMark.textContent = h.status === "success" ? MARKS.success : MARKS.failed;
  document.querySelector("header").className = "s-" + h.status;
  const head = document.getElementById("head");
  const counts = Object.keys(h.counts || {}).filter(k => h.counts[k]).map(k => h.counts[k] + " " + k.replace(/_/g, " ")).join(", ");
  for (const [k, v] of [["file", h.file], ["status", h.status], ["exit code", h.exit_code + (h.signal ? " (" + h.signal + ")" : "")],
                        ["duration", secs(h.duration_s)], ["pool", h.pool], ["tasks", counts || "none"],
                        ["started", h.started_at], ["host", h.host], ["taskrun", h.taskrun_version], ["run", h.run_id]]) {
    const row = el("div");
    row.append(el("dt", {}, k), el("dd", {"data-field": k}, String(v)));
    head.append(row);
  }
  if (h.reason) {
    const r = document.getElementById("reason");
    r.textContent = "Reason: " + h.reason;
    r.hidden = false;
  }

  // --- legend and critical path ---------------------------------------------------------
  const legend = document.getElementById("legend");
  for (const o of OUTCOMES) {
    const li = el("li");
    const s = sv("svg", {viewBox: "0 0 28 14", "aria-hidden": "true"});
    s.append(sv("rect", {x: 0, y: 0, width: 28, height: 14, class: "swatch o-" + o}));
    li.append(s, mark(o), document.createTextNode(o));
    legend.append(li);
  }
  const critLi = el("li");
  const cs = sv("svg", {viewBox: "0 0 28 14", "aria-hidden": "true"});
  cs.append(sv("rect", {x: 1, y: 1, width: 26, height: 12, class: "swatch o-success crit"}));
  critLi.append(cs, document.createTextNode("outlined: on the critical path"));
  const retryLi = el("li");
  const rs = sv("svg", {viewBox: "0 0 28 14", "aria-hidden": "true"});
  rs.append(sv("path", {d: "M2 7L26 7", class: "retry-swatch"}));
  retryLi.append(rs, document.createTextNode("dotted: a task's wait before its next try"));
  legend.append(critLi, retryLi);

  const onPath = new Set(D.critical);
  const crit = document.getElementById("critical");
  if (D.critical.length) {
    crit.append(document.createTextNode("Critical path " + secs(D.critical_s) + ": "));
    crit.append(el("span", {class: "path"}, D.critical.map(i => D.names[i]).join(" \u2192 ")));
  } else {
    crit.textContent = "No task ran: no critical path.";
  }

  // --- timeline -------------------------------------------------------------------------
  // Drawn at a width: the box's, times the zoom. Zooming draws it again (one pass, as at load);
  // the events are handled on the boxes, so they outlive each drawing.
  const tip = document.getElementById("tip");
  const bars = D.bars;
  const rowBars = Array.from({length: D.slots}, () => []);
  bars.forEach((b, i) => rowBars[b[B.slot]].push(i));
  const barOf = new Map(bars.map((b, i) => [b[B.task] + ":" + b[B.attempt], i]));
  const box = document.getElementById("timeline"), cbox = document.getElementById("concurrency");
  const LEFT = 64, TOP = 22, RIGHT = 16;
  const span = Math.max(D.span, 0.001);
  const rowH = Math.max(3, Math.min(22, Math.floor(640 / Math.max(1, D.slots))));
  const height = TOP + D.slots * rowH + 6;
  const base = Math.max(600, box.clientWidth - 2);
  let zoom = 1, width, plot, step, rects = [];
  const x = t => LEFT + (t / span) * plot;
  const tick = t => t.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9))) + " s";  // as many decimals as the step has
  const mid = b => (TOP + b[B.slot] * rowH + rowH / 2).toFixed(1);

  function drawTimeline() {
    const svg = sv("svg", {width: width, height: height, id: "timeline-svg", role: "group",
                           "aria-label": "Timeline: " + bars.length + " attempts on " + D.slots + " slots"});
    const defs = sv("defs", {});
    // Besides its colour, each outcome but success has its own texture: read without colour too.
    for (const [o, turn, lines] of [["failed", 0, "M0 0L6 6M6 0L0 6"], ["timeout", 45, "M1 0L1 6"], ["cancelled", -45, "M1 0L1 6"]]) {
      const p = sv("pattern", {id: "hatch-" + o, patternUnits: "userSpaceOnUse", width: 6, height: 6,
                               patternTransform: "rotate(" + turn + ")"});
      const c = getComputedStyle(document.documentElement).getPropertyValue("--" + o).trim();
      p.append(sv("rect", {width: 6, height: 6, fill: c}),
               sv("path", {d: lines, stroke: "rgba(255,255,255,0.5)", "stroke-width": o === "failed" ? 1 : 2}));
      defs.append(p);
    }
    svg.append(defs);  // the legend's swatches use these patterns too
    const grid = sv("g", {class: "grid"});
    for (let t = 0; t <= span + 1e-9; t += step) {
      grid.append(sv("line", {x1: x(t), x2: x(t), y1: TOP - 4, y2: height}));
      const label = sv("text", {x: x(t), y: 12, "text-anchor": "middle"});
      label.textContent = tick(t);
      grid.append(label);
    }
    svg.append(grid);
    const critPoints = [];
    rects = new Array(bars.length);
    for (let s = 0; s < D.slots; s++) {
      const g = sv("g", {class: "row", "data-slot": s});
      const y = TOP + s * rowH;
      if (s % Math.ceil(12 / rowH) === 0) {  // a label every row that has room for one
        const label = sv("text", {x: LEFT - 6, y: y + Math.min(rowH, 14) - 3, "text-anchor": "end"});
        label.textContent = "slot " + s;
        g.append(label);
      }
      for (const i of rowBars[s]) {
        const b = bars[i], task = b[B.task], outcome = OUTCOMES[b[B.outcome]];
        const tries = D.tasks[task][T.attempts];
        const x0 = x(b[B.start]), w = Math.max(1, x(b[B.end]) - x0);
        const critical = onPath.has(task);
        const r = sv("rect", {
          x: x0.toFixed(1), y: y + 1, width: w.toFixed(1), height: Math.max(1, rowH - 2),
          class: "bar o-" + outcome + (critical ? " crit" : ""), tabindex: -1, role: "img",
          "data-i": i, "data-task": D.names[task], "data-attempt": b[B.attempt], "data-slot": s, "data-outcome": outcome,
          "aria-label": MARKS[outcome] + " " + D.names[task] + ", try " + b[B.attempt] + " of " + tries + ", " + outcome + ", " +
            ended(b[B.exit], b[B.signal]) + ", " + b[B.start].toFixed(3) + " s to " + b[B.end].toFixed(3) + " s" +
            (critical ? ", on the critical path" : "")});
        if (critical) {
          r.setAttribute("data-critical", "1");
          critPoints.push([b[B.start], x0, x0 + w, y + rowH / 2]);
        }
        rects[i] = r;
        g.append(r);
        if (rowH >= 14 && w > 40) {
          // A nested svg clips the label to its bar.
          const clip = sv("svg", {x: x0.toFixed(1), y: y, width: (w - 2).toFixed(1), height: rowH});
          const t = sv("text", {x: 3, y: rowH - 6, class: "label"});
          t.textContent = MARKS[outcome] + " " + D.names[task] + (tries > 1 ? " (try " + b[B.attempt] + "/" + tries + ")" : "");
          clip.append(t);
          g.append(clip);
        }
      }
      svg.append(g);
    }
    // A task's attempts joined across the wait before each retry: one task, several tries.
    let retries = "";
    for (const [task, attempt] of D.gaps) {
      const a = bars[barOf.get(task + ":" + attempt)], b = bars[barOf.get(task + ":" + (attempt + 1))];
      if (a && b) retries += "M" + x(a[B.end]).toFixed(1) + " " + mid(a) + "L" + x(b[B.start]).toFixed(1) + " " + mid(b);
    }
    if (retries) svg.append(sv("path", {id: "retry-line", d: retries}));
    if (critPoints.length > 1) {  // what unlocked what along the critical path, in time order
      critPoints.sort((a, b) => a[0] - b[0]);
      let d = "";
      for (let k = 1; k < critPoints.length; k++) {
        const a = critPoints[k - 1], b = critPoints[k];
        d += "M" + a[2].toFixed(1) + " " + a[3].toFixed(1) + "L" + b[1].toFixed(1) + " " + b[3].toFixed(1);
      }
      svg.append(sv("path", {id: "crit-line", d: d}));
    }
    if (rects.length) rects[0].setAttribute("tabindex", 0);
    box.replaceChildren(svg);
  }

  // --- concurrency ----------------------------------------------------------------------
  const cc = D.conc;
  let most = 0;
  for (let k = 1; k < cc.length; k += 2) most = Math.max(most, cc[k]);
  // A pool far above what ran would flatten the graph: then the pool line is left above the scale.
  const top = Math.max(1, most, h.pool <= 2 * Math.max(1, most) ? h.pool : 0);
  const CH = 160, CT = 10, CB = 22;
  const cy = n => CT + (1 - n / top) * (CH - CT - CB);

  function drawConcurrency() {
    const csvg = sv("svg", {width: width, height: CH, id: "concurrency-svg", role: "img",
                            "aria-label": "Running attempts over time: at most " + most + " at once, pool " + h.pool});
    const cgrid = sv("g", {class: "grid"});
    for (let t = 0; t <= span + 1e-9; t += step) {
      cgrid.append(sv("line", {x1: x(t), x2: x(t), y1: CT, y2: CH - CB}));
      const label = sv("text", {x: x(t), y: CH - 6, "text-anchor": "middle"});
      label.textContent = tick(t);
      cgrid.append(label);
    }
    for (const n of new Set([0, most, top])) {
      const label = sv("text", {x: LEFT - 6, y: cy(n) + 4, "text-anchor": "end"});
      label.textContent = String(n);
      cgrid.append(label);
    }
    csvg.append(cgrid);
    if (cc.length) {
      let d = "M" + x(0).toFixed(1) + " " + cy(0).toFixed(1), last = 0;
      for (let k = 0; k < cc.length; k += 2) {
        const px = x(cc[k]).toFixed(1);
        d += "L" + px + " " + cy(last).toFixed(1) + "L" + px + " " + cy(cc[k + 1]).toFixed(1);
        last = cc[k + 1];
      }
      d += "L" + x(span).toFixed(1) + " " + cy(last).toFixed(1) + "L" + x(span).toFixed(1) + " " + cy(0).toFixed(1) + "Z";
      csvg.append(sv("path", {class: "cc-area", d: d, id: "concurrency-path"}));
    }
    const poolLabel = sv("text", {x: LEFT + 4, y: CT + 10});
    if (h.pool <= top) {
      csvg.append(sv("line", {class: "cc-pool", x1: LEFT, x2: width - RIGHT, y1: cy(h.pool), y2: cy(h.pool)}));
      poolLabel.setAttribute("y", cy(h.pool) + 13);  // under the line: it may be the top of the graph
      poolLabel.textContent = "pool " + h.pool;
    } else {
      poolLabel.textContent = "pool " + h.pool + " (above the scale)";
    }
    csvg.append(poolLabel);
    cbox.replaceChildren(csvg);
  }

  const zoomText = document.getElementById("zoom-level");
  function draw(keepAt) {
    width = Math.round(base * zoom);
    plot = width - LEFT - RIGHT;
    step = niceStep(span, Math.max(2, Math.floor(plot / 90)));
    const focused = document.activeElement && document.activeElement.getAttribute("data-i");
    const centre = keepAt === undefined ? 0 : (box.scrollLeft + box.clientWidth / 2 - LEFT) / (box.scrollWidth - LEFT - RIGHT);
    hideTip();
    drawTimeline();
    drawConcurrency();
    zoomText.textContent = "\u00D7" + zoom;
    document.getElementById("zoom-out").disabled = zoom <= 1;
    document.getElementById("zoom-in").disabled = zoom >= 256;
    if (keepAt !== undefined) box.scrollLeft = cbox.scrollLeft = LEFT + centre * plot - box.clientWidth / 2;
    if (focused !== null && focused !== undefined && rects[+focused]) {
      rects[0].setAttribute("tabindex", -1);
      rects[+focused].setAttribute("tabindex", 0);
      rects[+focused].focus();
    }
  }
  document.getElementById("zoom-in").addEventListener("click", () => { zoom *= 2; draw(true); });
  document.getElementById("zoom-out").addEventListener("click", () => { zoom = Math.max(1, zoom / 2); draw(true); });
  // The two charts share the time axis: scrolled together.
  box.addEventListener("scroll", () => { cbox.scrollLeft = box.scrollLeft; });
  cbox.addEventListener("scroll", () => { box.scrollLeft = cbox.scrollLeft; });

  function showTip(i, px, py) {
    const b = bars[i], task = b[B.task], outcome = OUTCOMES[b[B.outcome]];
    tip.replaceChildren();
    const title = el("div", {class: "t s-" + outcome});
    title.append(mark(outcome), document.createTextNode(D.names[task]));
    tip.append(title);
    const lines = ["attempt " + b[B.attempt] + " of " + D.tasks[task][T.attempts] + ", slot " + b[B.slot],
                   outcome + ", " + ended(b[B.exit], b[B.signal]),
                   "from " + b[B.start].toFixed(3) + " s to " + b[B.end].toFixed(3) + " s (" + secs(b[B.end] - b[B.start]) + ")"];
    if (onPath.has(task)) lines.push("on the critical path");
    for (const line of lines) tip.append(el("div", {}, line));
    if (b[B.tail] >= 0) {
      tip.append(el("div", {}, "stderr (last lines):"));
      tip.append(el("pre", {class: "tail"}, D.tails[b[B.tail]]));
    }
    tip.hidden = false;
    const w = tip.offsetWidth, hh = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(px + 12, window.innerWidth - w - 8)) + "px";
    tip.style.top = (py + 16 + hh > window.innerHeight ? Math.max(4, py - hh - 12) : py + 16) + "px";
  }
  function hideTip() { tip.hidden = true; }
  const barIndex = target => {
    const i = target && target.getAttribute ? target.getAttribute("data-i") : null;
    return i === null ? null : +i;
  };
  box.addEventListener("mousemove", e => {
    const i = barIndex(e.target);
    if (i === null) hideTip(); else showTip(i, e.clientX, e.clientY);
  });
  box.addEventListener("mouseleave", hideTip);
  box.addEventListener("focusin", e => {
    const i = barIndex(e.target);
    if (i === null) return;
    const r = e.target.getBoundingClientRect();
    showTip(i, r.left, r.bottom - 12);
  });
  box.addEventListener("focusout", hideTip);
  // Roving focus: one bar in the tab order, the arrow keys move along a slot and between slots.
  box.addEventListener("keydown", e => {
    const i = barIndex(e.target);
    if (i === null) return;
    const b = bars[i], row = rowBars[b[B.slot]], at = row.indexOf(i);
    let next = null;
    if (e.key === "ArrowRight") next = row[at + 1];
    else if (e.key === "ArrowLeft") next = row[at - 1];
    else if (e.key === "Home") next = row[0];
    else if (e.key === "End") next = row[row.length - 1];
    else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      const way = e.key === "ArrowDown" ? 1 : -1;
      for (let s = b[B.slot] + way; s >= 0 && s < D.slots; s += way) {
        if (!rowBars[s].length) continue;
        next = rowBars[s].reduce((best, j) => Math.abs(bars[j][B.start] - b[B.start]) < Math.abs(bars[best][B.start] - b[B.start]) ? j : best);
        break;
      }
    } else if (e.key === "Escape") { hideTip(); return; }
    else return;
    e.preventDefault();
    if (next === null || next === undefined) return;
    e.target.setAttribute("tabindex", -1);
    rects[next].setAttribute("tabindex", 0);
    rects[next].focus();
  });

  draw();
  const notes = [];
  if (D.slots < h.pool) notes.push("Slots " + D.slots + " to " + (h.pool - 1) + " of the pool were never used.");
  if (D.slots_assigned) notes.push("This summary records no slots (an older taskrun): each attempt is drawn in the lowest slot free when it started.");
  if (!bars.length) notes.push("No attempt ran.");
  if (notes.length) box.after(el("p", {class: "note", id: "slot-note"}, notes.join(" ")));

  // The same attempts as a plain list, for screen readers and text search; filled when opened.
  const barList = document.getElementById("bar-list"), barMore = document.getElementById("bar-list-more");
  let listed = 0;
  function listBars() {
    const frag = document.createDocumentFragment();
    const upto = Math.min(bars.length, listed + 500);
    for (; listed < upto; listed++) frag.append(el("li", {}, rects[listed].getAttribute("aria-label")));
    barList.append(frag);
    barMore.hidden = listed >= bars.length;
  }
  document.getElementById("bar-list-box").addEventListener("toggle", e => { if (e.target.open && !listed) listBars(); });
  barMore.addEventListener("click", listBars);

  // --- not run --------------------------------------------------------------------------
  const notrun = [];
  D.names.forEach((n, i) => { if (!D.tasks[i][T.attempts]) notrun.push(i); });
  const nr = document.getElementById("notrun"), nrMore = document.getElementById("notrun-more");
  function listNotRun(all) {
    const frag = document.createDocumentFragment();
    for (const i of all ? notrun : notrun.slice(0, 50)) {
      const t = D.tasks[i];
      const li = el("li", {class: "s-" + t[T.status], "data-task": D.names[i], "data-status": t[T.status]});
      li.append(mark(t[T.status]), el("strong", {}, D.names[i]),
                document.createTextNode(": " + t[T.status].replace(/_/g, " ") + (t[T.reason] ? " (" + t[T.reason] + ")" : "")));
      frag.append(li);
    }
    nr.replaceChildren(frag);
    nrMore.hidden = all || notrun.length <= 50;
  }
  document.getElementById("notrun-none").hidden = notrun.length > 0;
  listNotRun(false);
  nrMore.addEventListener("click", () => listNotRun(true));

  // --- table ----------------------------------------------------------------------------
  const tbody = document.querySelector("#tasks tbody");
  const KEYS = {
    status: i => RANK[D.tasks[i][T.status]] ?? 9,
    name: i => D.names[i],
    duration: i => D.tasks[i][T.duration] ?? -1,
    attempts: i => D.tasks[i][T.attempts],
  };
  let order = D.order.slice(), shown = order, pageAt = 0, sortKey = null, sortDir = 1;
  function renderPage() {
    const frag = document.createDocumentFragment();
    for (const i of shown.slice(pageAt, pageAt + PAGE)) {
      const t = D.tasks[i];
      const tr = el("tr", {class: "s-" + t[T.status], "data-task": D.names[i]});
      const st = el("td", {class: "status"});
      st.append(mark(t[T.status]), document.createTextNode(t[T.status].replace(/_/g, " ")));
      tr.append(st, el("td", {class: "name"}, D.names[i]), el("td", {class: "num"}, secs(t[T.duration])),
                el("td", {class: "num"}, String(t[T.attempts])), el("td", {}, ended(t[T.exit], t[T.signal])),
                el("td", {}, t[T.reason] || ""));
      frag.append(tr);
    }
    tbody.replaceChildren(frag);
    document.getElementById("page").textContent = shown.length
      ? "tasks " + (pageAt + 1) + "\u2013" + Math.min(shown.length, pageAt + PAGE) + " of " + shown.length : "no task";
    document.getElementById("prev").disabled = pageAt === 0;
    document.getElementById("next").disabled = pageAt + PAGE >= shown.length;
  }
  function applyFilter() {
    const q = document.getElementById("filter").value.toLowerCase();
    shown = q ? order.filter(i => D.names[i].toLowerCase().includes(q)) : order;
    pageAt = 0;
    renderPage();
  }
  for (const button of document.querySelectorAll("#tasks th button")) {
    button.addEventListener("click", () => {
      const key = button.getAttribute("data-key");
      // First click: what matters first (slowest, failures, most attempts); names A to Z.
      sortDir = key === sortKey ? -sortDir : (key === "name" || key === "status" ? 1 : -1);
      sortKey = key;
      const f = KEYS[key];
      order = D.order.slice().sort((a, b) => {
        const fa = f(a), fb = f(b);
        return fa < fb ? -sortDir : fa > fb ? sortDir : 0;
      });
      for (const th of document.querySelectorAll("#tasks th")) th.setAttribute("aria-sort", "none");
      button.parentElement.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      applyFilter();
    });
  }
  document.getElementById("filter").addEventListener("input", applyFilter);
  document.getElementById("prev").addEventListener("click", () => { pageAt = Math.max(0, pageAt - PAGE); renderPage(); });
  document.getElementById("next").addEventListener("click", () => { pageAt += PAGE; renderPage(); });
  renderPage();

  document.body.setAttribute("data-ready", String(Math.round(performance.now())));
})();
