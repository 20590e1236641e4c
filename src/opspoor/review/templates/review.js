// The review page: keyboard first, pictures veiled unless a key or the mouse button is held.
(() => {
  "use strict";
  const cfg = JSON.parse(document.getElementById("cfg").textContent);
  const B = cfg.base || "";
  const items = Array.from(document.querySelectorAll(".item"));
  let sel = 0;
  let full = false;
  let revealing = null;

  function select(i) {
    if (!items.length) return;
    sel = Math.max(0, Math.min(items.length - 1, i));
    items.forEach((el, k) => el.classList.toggle("selected", k === sel));
    items[sel].scrollIntoView({ block: "nearest" });
  }

  async function post(url, body) {
    const resp = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    return resp.ok ? resp.json() : null;
  }

  function show(state) {
    if (!state || state.group !== cfg.group) return;
    state.items.forEach((it, k) => {
      const el = items[k];
      if (!el) return;
      el.querySelector(".cat").textContent = it.name;
      el.dataset.category = it.category || "";
      const by = Object.entries(it.by).map(([who, c]) => who + ": " + c);
      el.querySelector(".by").textContent = by.length > 1 ? "(" + by.join("; ") + ")" : "";
      el.querySelector(".tags").textContent = it.tags.length ? "#" + it.tags.join(" #") : "";
    });
    const br = document.getElementById("break");
    if (br && state.exposure) br.style.display = state.exposure.break ? "block" : "none";
  }

  async function refresh() {
    const resp = await fetch(B + "/api/group/" + encodeURIComponent(cfg.group) + "/state");
    if (resp.ok) show(await resp.json());
  }

  async function endReveal(r) {
    const seconds = r.shownAt ? (performance.now() - r.shownAt) / 1000 : 0;
    const res = await post(B + "/api/reveal/" + r.rid + "/end", { seconds: seconds });
    if (res) show(Object.assign({ group: cfg.group, items: [] }, res));
  }

  async function reveal(i) {
    if (revealing) return;
    const img = items[i].querySelector("img");
    const r = { img: img, veiled: img.getAttribute("src"), rid: null, url: null, released: false, shownAt: 0 };
    revealing = r;
    const resp = await fetch(B + "/item/" + encodeURIComponent(cfg.group) + "/" + i + "/reveal?full=" + (full ? 1 : 0),
      { method: "POST" });
    if (!resp.ok) { if (revealing === r) revealing = null; return; }
    r.rid = resp.headers.get("X-Reveal-Id");
    const blob = await resp.blob();
    if (r.released) { endReveal(r); return; }  // let go before the picture came: never shown
    r.url = URL.createObjectURL(blob);
    img.src = r.url;
    img.classList.remove("veiled");
    img.classList.add("revealed");
    r.shownAt = performance.now();
  }

  function veil() {
    const r = revealing;
    if (!r) return;
    revealing = null;
    r.released = true;
    r.img.classList.remove("revealed");
    r.img.classList.add("veiled");
    r.img.src = r.veiled;
    if (r.url) URL.revokeObjectURL(r.url);
    if (r.rid) endReveal(r);
  }

  async function decide(key, whole) {
    const res = await post(B + "/api/decide", { group: cfg.group, item: whole ? null : sel, key: key });
    if (!res) return;
    show(res);
    if (whole) {
      location.href = B + "/next?undecided=1&after=" + encodeURIComponent(cfg.group);
    } else if (sel < items.length - 1) {
      select(sel + 1);
    }
  }

  async function tag(t) {
    if (t) show(await post(B + "/api/decide", { group: cfg.group, item: sel, tags: [t] }));
  }

  async function series(name) {
    if (name) show(await post(B + "/api/decide", { group: cfg.group, item: null, series: name }));
  }

  async function undo() {
    const res = await post(B + "/api/undo");
    if (res && res.undone && res.group !== cfg.group) {
      location.href = B + "/group/" + encodeURIComponent(res.group);
    } else if (res) {
      show(res);
    }
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const digit = /^(?:Digit|Numpad)(\d)$/.exec(e.code);
    if (e.code === "Space") {
      e.preventDefault();
      if (!e.repeat) reveal(sel);
      return;
    }
    if (e.repeat) return;
    if (digit && cfg.keys[digit[1]] !== undefined) {
      e.preventDefault();
      decide(digit[1], e.shiftKey);
      return;
    }
    switch (e.key) {
      case "j": select(sel + 1); break;
      case "k": select(sel - 1); break;
      case "n": location.href = B + "/next?after=" + encodeURIComponent(cfg.group); break;
      case "p": location.href = B + "/prev?before=" + encodeURIComponent(cfg.group); break;
      case "u": undo(); break;
      case "t": tag(window.prompt("Tag for this file")); break;
      case "f": tag("follow-up"); break;
      case "s": series(window.prompt("Series name for this group")); break;
      case "o":
        full = !full;
        document.getElementById("fullsize").textContent = full ? "on" : "off";
        break;
      case "?": document.getElementById("help").classList.toggle("shown"); break;
      case "Escape": document.getElementById("help").classList.remove("shown"); break;
      default: return;
    }
    e.preventDefault();
  });
  document.addEventListener("keyup", (e) => { if (e.code === "Space") veil(); });
  items.forEach((el, k) => {
    el.querySelector(".frame").addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      select(k);
      reveal(k);
    });
  });
  document.addEventListener("mouseup", veil);
  window.addEventListener("blur", veil);
  document.addEventListener("visibilitychange", veil);

  refresh();
  setInterval(refresh, 1500);  // decisions by other reviewers appear within 2 s
})();
