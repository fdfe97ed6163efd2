// The s3cors demo page: each action is a real cross-origin request from this page to the
// gateway; the page shows what the browser allowed and asks the explain endpoint, on the
// gateway's debug listener, why.
"use strict";

const GW = window.S3CORS.gateway; // e.g. http://127.0.0.1:8080
const DEBUG = window.S3CORS.debug;  // the gateway's debug listener, e.g. http://127.0.0.1:8082
const ORIGIN = location.origin;    // e.g. http://127.0.0.1:8081

const actions = [
  {
    section: "website", id: "upload", expect: "ok",
    title: "Upload a note",
    what: "PUT with a custom metadata header. The browser first sends a preflight (PUT is not a simple method); the rule allows PUT and x-amz-meta-*.",
    method: "PUT", path: "/website/notes/hello.txt",
    headers: { "Content-Type": "text/plain", "x-amz-meta-author": "the demo page" },
    body: () => "Hello from the demo page, " + new Date().toISOString(),
    show: ["ETag", "x-amz-request-id"],
  },
  {
    section: "website", id: "read", expect: "ok",
    title: "Read it back",
    what: "A simple GET: no preflight. ExposeHeaders makes ETag and x-amz-meta-author readable from JavaScript; x-amz-request-id is not exposed, so it stays hidden.",
    method: "GET", path: "/website/notes/hello.txt",
    show: ["Content-Type", "ETag", "x-amz-meta-author", "x-amz-request-id"], readBody: true,
  },
  {
    section: "website", id: "bad-header", expect: "bad",
    title: "Upload with an unlisted header",
    what: "Same PUT plus x-demo-tracking, which no AllowedHeader matches: the preflight fails, and the PUT is never sent.",
    method: "PUT", path: "/website/notes/tracked.txt",
    headers: { "Content-Type": "text/plain", "x-demo-tracking": "1" },
    body: () => "should never be stored",
  },
  {
    section: "website", id: "delete", expect: "bad",
    title: "Delete the note",
    what: "DELETE is not in the rule's AllowedMethods: the preflight fails and the object stays.",
    method: "DELETE", path: "/website/notes/hello.txt",
  },
  {
    section: "website", id: "private", expect: "bad",
    title: "Upload to the private bucket",
    what: "Bucket private is listed without CORS configuration (null): S3 answers every preflight 403 \"CORS is not enabled for this bucket.\"",
    method: "PUT", path: "/private/notes/hello.txt",
    headers: { "Content-Type": "text/plain", "x-amz-meta-author": "the demo page" },
    body: () => "should never be stored",
  },
  {
    section: "fonts", id: "font-ok", expect: "ok",
    title: "Load the font from bucket fonts",
    what: "Rule fonts-for-the-demo-page allows this page's origin for GET.",
    font: "/fonts/pixel.ttf",
  },
  {
    section: "fonts", id: "font-blocked", expect: "bad",
    title: "Load the same font from bucket partner-fonts",
    what: "That bucket only allows https://*.partner.example: the font response gets no CORS headers and the browser discards it.",
    font: "/partner-fonts/pixel.ttf",
  },
  {
    section: "credentials", id: "public", expect: "ok",
    title: "GET from a bucket open to *",
    what: "Rule AllowedOrigin * answers Access-Control-Allow-Origin: * and no credentials header.",
    method: "GET", path: "/public/hello.txt", readBody: true,
    show: ["Content-Type"],
  },
  {
    section: "credentials", id: "public-credentials", expect: "bad",
    title: "Same GET with credentials: 'include'",
    what: "S3 still answers Access-Control-Allow-Origin: *, but a browser never accepts * for a request with credentials.",
    method: "GET", path: "/public/hello.txt", credentials: "include",
  },
  {
    section: "credentials", id: "website-credentials", expect: "ok",
    title: "GET with credentials from bucket website",
    what: "Its rule names this origin, so S3 echoes the origin and adds Access-Control-Allow-Credentials: true.",
    method: "GET", path: "/website/hello.txt", credentials: "include", readBody: true,
  },
  {
    section: "credentials", id: "sandboxed", expect: "ok",
    title: "GET from a sandboxed iframe (Origin: null)",
    what: "A sandboxed iframe has an opaque origin and sends Origin: null; bucket sandboxed allows the origin \"null\".",
    method: "GET", path: "/sandboxed/hello.txt", sandboxed: true, readBody: true,
  },
];

const safelisted = new Set(["accept", "accept-language", "content-language"]);
const simpleTypes = new Set(["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]);

// requestHeaders is the Access-Control-Request-Headers value a browser sends for a's headers.
function requestHeaders(a) {
  const names = [];
  for (const [name, value] of Object.entries(a.headers || {})) {
    const n = name.toLowerCase();
    if (safelisted.has(n)) continue;
    if (n === "content-type" && simpleTypes.has(value.split(";")[0].trim().toLowerCase())) continue;
    names.push(n);
  }
  return names.sort().join(",");
}

function needsPreflight(a) {
  return !["GET", "HEAD", "POST"].includes(a.method) || requestHeaders(a) !== "";
}

async function explain(params) {
  const q = new URLSearchParams(params);
  const res = await fetch(DEBUG + "/debug/s3cors/explain?" + q, { cache: "no-store" });
  if (!res.ok) throw new Error("explain: " + res.status + " " + (await res.text()));
  return res.json();
}

async function refreshStats() {
  try {
    const res = await fetch(DEBUG + "/debug/s3cors/stats", { cache: "no-store" });
    const st = await res.json();
    document.getElementById("st-proxy").textContent = st.answered_at_proxy;
    document.getElementById("st-upstream").textContent = st.reached_upstream;
    const options = (st.upstream_by_method || {}).OPTIONS || 0;
    document.getElementById("st-options").textContent = options;
  } catch (e) {
    console.warn("stats", e);
  }
}

// sandboxedFetch runs fetch in a sandboxed iframe (opaque origin) and reports its result.
function sandboxedFetch(url) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.sandbox = "allow-scripts";
    frame.hidden = true;
    const id = Math.random().toString(36).slice(2);
    const onMessage = (ev) => {
      if (!ev.data || ev.data.id !== id) return;
      window.removeEventListener("message", onMessage);
      frame.remove();
      resolve(ev.data);
    };
    window.addEventListener("message", onMessage);
    frame.srcdoc = `<script>
      fetch(${JSON.stringify(url)}, {cache: "no-store"})
        .then(async (r) => parent.postMessage({id: ${JSON.stringify(id)}, ok: true, status: r.status, body: await r.text()}, "*"))
        .catch((e) => parent.postMessage({id: ${JSON.stringify(id)}, ok: false, error: String(e)}, "*"));
    <\/script>`;
    document.body.appendChild(frame);
  });
}

let fontSeq = 0;

// loadFont declares an @font-face for url and asks document.fonts to load it.
async function loadFont(url) {
  const family = "DemoPixel" + (++fontSeq);
  const style = document.createElement("style");
  style.textContent = `@font-face { font-family: "${family}"; src: url("${url}") format("truetype"); }`;
  document.head.appendChild(style);
  try {
    await document.fonts.load(`24px "${family}"`);
  } catch (e) {
    // A face that fails makes load() reject in some browsers; its status says so anyway.
  }
  let status = "unloaded";
  document.fonts.forEach((f) => { if (f.family.replace(/"/g, "") === family) status = f.status; });
  return { family, status };
}

async function perform(a) {
  if (a.font) {
    const fontURL = GW + a.font + "?t=" + Date.now();
    const { family, status } = await loadFont(fontURL);
    return { ok: status === "loaded", family, line: status === "loaded"
      ? "Font loaded: document.fonts reports status \"loaded\"."
      : "Font blocked: document.fonts reports status \"" + status + "\"; the text falls back to the default font." };
  }
  // A fresh query string keeps the browser's cache out of the way; S3 ignores it.
  const url = GW + a.path + "?t=" + Date.now();
  if (a.sandboxed) {
    const r = await sandboxedFetch(url);
    return r.ok
      ? { ok: true, line: `${a.method} answered ${r.status}; the sandboxed frame read it: "${r.body.trim()}"` }
      : { ok: false, line: "Blocked by the browser: " + r.error };
  }
  const init = { method: a.method, headers: a.headers || {}, cache: "no-store", credentials: a.credentials || "omit" };
  if (a.body) init.body = a.body();
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    return { ok: false, line: "Blocked by the browser: " + e + ". The page cannot see why; the gateway can:" };
  }
  let line = `${a.method} answered ${res.status} ${res.statusText}, and the page may read the response.`;
  const readable = [];
  for (const name of a.show || []) {
    const v = res.headers.get(name);
    readable.push([name, v]);
  }
  let body = "";
  if (a.readBody) body = (await res.text()).trim();
  return { ok: true, line, readable, body, status: res.status };
}

function explainParams(a, method, preflight) {
  const p = { method, url: GW + (a.path || a.font), origin: a.sandboxed ? "null" : ORIGIN };
  if (preflight) {
    p["request-method"] = a.method;
    const h = requestHeaders(a);
    if (h) p["request-headers"] = h;
  }
  return p;
}

function rulesTable(rep) {
  if (!rep.rules.length) return "<p>No CORS rules apply to this bucket.</p>";
  const cell = (c, text) => `<td class="${c.matched ? "y" : "n"}">${c.matched ? "✓" : "✗"} ${text}</td>`;
  const esc = (s) => String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[ch]));
  let html = "<table><tr><th>rule</th><th>origin</th><th>method</th><th>headers</th></tr>";
  for (const r of rep.rules) {
    const name = "#" + r.index + (r.id ? " " + esc(r.id) : "") + (r.used ? " (used)" : "");
    const hdr = r.headers.failed ? esc(r.headers.failed) + " not in " : "";
    html += `<tr><td>${name}</td>` +
      cell(r.origin, esc(r.origin.allowed.join(", "))) +
      cell(r.method, esc(r.method.allowed.join(", "))) +
      cell(r.headers, hdr + esc((r.headers.allowed.length ? r.headers.allowed : ["(none)"]).join(", "))) + "</tr>";
  }
  return html + "</table>";
}

function responseText(rep) {
  const r = rep.response;
  let s = "";
  if (rep.outcome === "reply") s += `HTTP/1.1 ${r.status}\n`;
  else s += `(${r.note})\n`;
  for (const [k, v] of r.headers) s += `${k}: ${v}\n`;
  if (r.body) s += "\n" + r.body;
  return s;
}

async function run(a, card) {
  const pill = card.querySelector(".pill");
  pill.className = "pill pending";
  pill.textContent = "running";
  const result = await perform(a);
  const preflight = !a.font && !a.sandboxed && needsPreflight(a);
  const reports = [];
  try {
    if (preflight) reports.push(["Preflight OPTIONS", await explain(explainParams(a, "OPTIONS", true))]);
    if (!preflight || reports[0][1].allowed) {
      reports.push([a.font ? "Font GET" : a.method, await explain(explainParams(a, a.font ? "GET" : a.method, false))]);
    }
  } catch (e) {
    reports.push(["explain", { summary: String(e), rules: [], response: { headers: [], note: "" } }]);
  }

  card.classList.remove("ok", "bad");
  card.classList.add(result.ok ? "ok" : "bad");
  card.dataset.state = result.ok ? "ok" : "bad";
  pill.className = "pill " + (result.ok ? "ok" : "bad");
  pill.textContent = result.ok ? "allowed" : "blocked";
  card.querySelector(".result").hidden = false;

  const browser = card.querySelector(".browser");
  browser.textContent = result.line;
  if (result.readable && result.readable.length) {
    const ul = document.createElement("ul");
    for (const [name, v] of result.readable) {
      const li = document.createElement("li");
      li.textContent = v === null ? `${name}: hidden (not exposed to JavaScript)` : `${name}: ${v}`;
      ul.appendChild(li);
    }
    browser.appendChild(ul);
  }
  if (result.body) {
    const p = document.createElement("div");
    p.className = "body";
    p.textContent = "Body: " + result.body;
    browser.appendChild(p);
  }

  const why = card.querySelector(".why");
  why.textContent = "";
  for (const [label, rep] of reports) {
    const div = document.createElement("div");
    div.textContent = `${label}: ${rep.summary}`;
    why.appendChild(div);
  }
  const last = reports[reports.length - 1][1];
  if (!result.ok && last.allowed && a.credentials === "include") {
    const div = document.createElement("div");
    div.textContent = "S3 answered Access-Control-Allow-Origin: *. Browsers refuse * for requests with credentials, so the page is blocked although the rule matched.";
    why.appendChild(div);
  }
  const sample = card.querySelector(".font-sample");
  if (a.font) {
    sample.hidden = false;
    // A serif fallback looks nothing like the pixel font, so the difference is plain.
    sample.style.fontFamily = `"${result.family}", Georgia, serif`;
  }
  const decisive = reports.find(([, r]) => !r.allowed) || reports[reports.length - 1];
  card.querySelector(".rules").innerHTML = rulesTable(decisive[1]);
  card.querySelector(".response").textContent = responseText(decisive[1]);
  await refreshStats();
}

function setup() {
  document.getElementById("page-origin").textContent = ORIGIN;
  document.getElementById("gw-origin").textContent = GW;
  document.querySelectorAll(".origin").forEach((el) => (el.textContent = ORIGIN));
  document.querySelectorAll(".gw").forEach((el) => (el.textContent = GW));
  const tpl = document.getElementById("card");
  const runs = [];
  for (const a of actions) {
    const card = tpl.content.firstElementChild.cloneNode(true);
    card.id = "action-" + a.id;
    card.dataset.expect = a.expect;
    card.querySelector(".run").textContent = a.title;
    card.querySelector(".what").textContent = a.what;
    card.querySelector(".request code").textContent = a.font
      ? `@font-face { src: url(${GW}${a.font}) }`
      : `${a.method} ${GW}${a.path}` + (a.credentials ? "  (credentials: include)" : "") + (a.sandboxed ? "  (from a sandboxed iframe)" : "");
    const go = () => run(a, card);
    card.querySelector(".run").addEventListener("click", go);
    runs.push(go);
    document.querySelector(`.cards[data-section="${a.section}"]`).appendChild(card);
  }
  document.getElementById("run-all").addEventListener("click", async () => {
    window.demoDone = false;
    for (const go of runs) {
      try {
        await go();
      } catch (e) {
        console.error(e);
      }
    }
    window.demoDone = true;
  });
  refreshStats();
}

setup();
