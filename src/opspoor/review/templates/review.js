// The review page: keyboard first, pictures veiled unless a key or the mouse button is held.
//
// A group comes on screen without a new page: while the reviewer works on one group, the parts of
// the pages of the next and the previous group (their veiled pictures inside them, decoded ahead)
// are fetched, and `n`, `p` or `Shift`+digit swap one in (the address follows, with pushState).
// Each swap leaves a User Timing measure, "opspoor:group-on-screen", from the key's event to the
// first frame after it (bench/review.py reads it).
(() => {
  "use strict";
  const root = document.getElementById("group");
  const B = JSON.parse(document.getElementById("keys").textContent).base || "";
  const KEYS = JSON.parse(document.getElementById("keys").textContent).keys;
  const enc = encodeURIComponent;
  let cfg = null;
  let items = [];
  let sel = 0;
  let full = false;
  let revealing = null;
  let near = { next: null, prev: null };  // promises of the neighbouring groups' parts (or null)
  let moves = Promise.resolve();  // moves between groups, one after the other

  function mount() {
    cfg = JSON.parse(root.querySelector(".cfg").textContent);
    items = Array.from(root.querySelectorAll(".item"));
    document.getElementById("fullsize").textContent = full ? "on" : "off";
    sel = 0;
  }

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
    const group = cfg.group;
    const resp = await fetch(B + "/api/group/" + enc(group) + "/state");
    if (resp.ok && group === cfg.group) show(await resp.json());
  }

  // A group's part: {id, holder} (holder: the part, not in the page yet, its pictures decoded),
  // {id: null} when there is no such group, null when it could not be had. `have`: a part held
  // already, which the server names instead of sending it again.
  async function part(url, have) {
    try {
      const resp = await fetch(url);
      if (resp.status === 204) return { id: null };
      const id = resp.headers.get("X-Group");
      if (!resp.ok || !id) return null;
      const html = await resp.text();
      if (!html) return have && have.id === id ? have : null;
      const holder = document.createElement("div");
      holder.innerHTML = html;  // the server's own template, escaped there; no script runs
      const imgs = Array.from(holder.querySelectorAll("img"));
      await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
      return { id: id, holder: holder };
    } catch (err) {
      return null;
    }
  }

  // the neighbours' parts, fetched once `after` has come (at once when not given)
  function fetchNear(after) {
    const g = enc(cfg.group);
    const ready = after || Promise.resolve();
    near = {
      next: ready.then(() => part(B + "/next?part=1&after=" + g)),
      prev: ready.then(() => part(B + "/prev?part=1&before=" + g)),
    };
  }

  function swap(p, keyAt, key) {
    veil();
    window.scrollTo(0, 0);
    root.replaceChildren(...p.holder.childNodes);
    mount();
    document.title = cfg.title;
    history.pushState(null, "", B + "/group/" + enc(cfg.group));
    // after the first frame with the new group (so that nothing competes with it): the measure,
    // its state, the neighbours' parts
    const painted = new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    const group = cfg.group;
    painted.then(() => {
      if (keyAt !== undefined) {
        performance.measure("opspoor:group-on-screen",
          { start: keyAt, end: performance.now(), detail: { key: key, group: group } });
      }
      refresh();
    });
    fetchNear(painted);
  }

  // n / p: the neighbour fetched ahead (a full page load if that failed); past the end, nothing
  function step(which, keyAt, key) {
    moves = moves.then(async () => {
      const p = await near[which];
      if (p && p.holder) {
        swap(p, keyAt, key);
      } else if (p === null) {
        const q = which === "next" ? "/next?after=" : "/prev?before=";
        location.href = B + q + enc(cfg.group);
      } else if (which === "next") {
        location.href = B + "/queue?done=1";
      }
    });
  }

  // after a whole group's category: the next group nobody has categorised (a claim in team mode);
  // most often the one fetched ahead, which the server then only names
  function onward(keyAt, key) {
    moves = moves.then(async () => {
      const ahead = await near.next;
      const have = ahead && ahead.holder ? ahead : null;
      const url = B + "/next?part=1&undecided=1&after=" + enc(cfg.group) + (have ? "&have=" + enc(have.id) : "");
      const p = await part(url, have);
      if (p && p.holder) swap(p, keyAt, key);
      else if (p) location.href = B + "/queue?done=1";
      else location.href = B + "/next?undecided=1&after=" + enc(cfg.group);
    });
  }

  function goTo(group) {
    moves = moves.then(async () => {
      const p = await part(B + "/group/" + enc(group) + "?part=1");
      if (p && p.holder) swap(p);
      else location.href = B + "/group/" + enc(group);
    });
  }

  async function endReveal(r) {
    const seconds = r.shownAt ? (performance.now() - r.shownAt) / 1000 : 0;
    const res = await post(B + "/api/reveal/" + r.rid + "/end", { seconds: seconds });
    if (res) show(Object.assign({ group: cfg.group, items: [] }, res));
  }

  async function reveal(i) {
    if (revealing || !items[i]) return;
    const img = items[i].querySelector("img");
    const r = { img: img, veiled: img.getAttribute("src"), rid: null, url: null, released: false, shownAt: 0 };
    revealing = r;
    const resp = await fetch(B + "/item/" + enc(cfg.group) + "/" + i + "/reveal?full=" + (full ? 1 : 0),
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

  async function decide(key, whole, keyAt) {
    const group = cfg.group;
    const res = await post(B + "/api/decide", { group: group, item: whole ? null : sel, key: key });
    if (!res) return;
    show(res);
    if (whole) {
      if (group === cfg.group) onward(keyAt, "Shift+" + key);
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
      goTo(res.group);
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
    if (digit && KEYS[digit[1]] !== undefined) {
      e.preventDefault();
      decide(digit[1], e.shiftKey, e.timeStamp);
      return;
    }
    switch (e.key) {
      case "j": select(sel + 1); break;
      case "k": select(sel - 1); break;
      case "n": step("next", e.timeStamp, "n"); break;
      case "p": step("prev", e.timeStamp, "p"); break;
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
  root.addEventListener("mousedown", (e) => {
    const frame = e.button === 0 && e.target.closest ? e.target.closest(".item .frame") : null;
    if (!frame) return;
    e.preventDefault();
    const k = items.indexOf(frame.closest(".item"));
    select(k);
    reveal(k);
  });
  document.addEventListener("mouseup", veil);
  window.addEventListener("blur", veil);
  document.addEventListener("visibilitychange", veil);
  window.addEventListener("popstate", () => location.reload());  // back / forward: that group's page

  mount();
  refresh();
  fetchNear();
  setInterval(refresh, 1500);  // decisions by other reviewers appear within 2 s
})();
