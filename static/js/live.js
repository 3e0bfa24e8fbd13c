// Ensemble's live client. One job: keep this page's timeline the same as the
// server's, and never lose a note the user typed.
//
// - Notes go to an outbox in localStorage first (it survives a reload), show as
//   pending, and are resent with the same client id until the server
//   acknowledges them; the server stores a client id once.
// - Every change on the server has a revision. The client holds the last one it
//   applied, says it on every (re)connect, and the server replays the rest from
//   the database. A jump in revisions means a broadcast was lost: ask again.
// - It reconnects after any close, with backoff and jitter, except after the
//   close codes that mean "not allowed".
(() => {
  "use strict";

  const root = document.getElementById("live");
  if (!root) return;

  const REFUSED = { 4401: "Offline: please log in again", 4403: "Offline: not allowed here" };
  const HEARTBEAT_MS = 15000;
  const RESEND_AFTER_MS = 10000;
  const MAX_IN_FLIGHT = 10;
  const SYNC_TIMEOUT_MS = 8000;
  const MAX_BACKOFF_MS = 15000;
  const LABELS = { connected: "Connected", reconnecting: "Reconnecting…", offline: "Offline" };

  const me = root.dataset.user;
  const statusEl = document.getElementById("connection");
  const notesEl = document.getElementById("notes");
  const form = document.getElementById("note-form");
  const textEl = document.getElementById("note-text");
  const kindEl = document.getElementById("note-kind");
  const errorsEl = document.getElementById("note-errors");
  const announcer = document.querySelector("[data-announcement]");
  const filters = { kind: document.getElementById("filter-type"), author: document.getElementById("filter-author") };

  let revision = Number(root.dataset.revision) || 0;
  let clockOffset = Date.parse(root.dataset.serverNow) - Date.now() || 0;
  let socket = null;
  let state = "offline";
  let refusal = "";
  let attempt = 0;
  let retryTimer = null;
  let heartbeatTimer = null;
  let lastHeard = 0;
  let syncing = false;
  // The revision of every note this page has seen, deleted ones included, so
  // that a late or repeated message never brings back an older state.
  const noteRevisions = new Map();

  // --- The outbox ------------------------------------------------------------

  // One localStorage key per unsent note: tabs of the same person add and
  // remove entries without overwriting each other's. If storage refuses (full,
  // or disabled), the notes are still kept in this page's memory.
  const outboxPrefix = `ensemble.outbox.${root.dataset.session}.${me}.`;
  const inMemory = new Map();
  const sentAt = new Map(); // client id -> when this page last sent it

  function readOutbox() {
    const entries = new Map(inMemory);
    try {
      for (let i = 0; i < localStorage.length; i += 1) {
        const key = localStorage.key(i);
        if (key.startsWith(outboxPrefix)) {
          const entry = JSON.parse(localStorage.getItem(key));
          entries.set(entry.client_id, entry);
        }
      }
    } catch {
      // Storage unreadable: what this page holds in memory is all there is.
    }
    return Array.from(entries.values()).sort((a, b) => a.at - b.at);
  }

  function keep(entry) {
    inMemory.set(entry.client_id, entry);
    try {
      localStorage.setItem(outboxPrefix + entry.client_id, JSON.stringify(entry));
    } catch {
      showError("This browser could not store the unsent note; keep this page open until it is sent.");
    }
    renderStatus();
  }

  function forget(clientId) {
    inMemory.delete(clientId);
    sentAt.delete(clientId);
    try {
      localStorage.removeItem(outboxPrefix + clientId);
    } catch {
      // Nothing stored, nothing to remove.
    }
    renderStatus();
  }

  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Send what has not been sent lately, a few at a time: each acknowledgement
  // makes room for the next, so a long outbox never trips the rate limit.
  function sendOutbox() {
    if (state !== "connected") return;
    const now = Date.now();
    let inFlight = Array.from(sentAt.values()).filter((t) => now - t < RESEND_AFTER_MS).length;
    for (const entry of readOutbox()) {
      if (inFlight >= MAX_IN_FLIGHT) break;
      if (now - (sentAt.get(entry.client_id) || 0) < RESEND_AFTER_MS) continue;
      sentAt.set(entry.client_id, now);
      inFlight += 1;
      const { at, ...note } = entry;
      send({ type: "note", ...note });
    }
  }

  // --- The connection ----------------------------------------------------------

  function setState(next) {
    state = next;
    renderStatus();
    root.classList.toggle("is-connected", next === "connected");
  }

  function renderStatus() {
    const waiting = readOutbox().length;
    let text = refusal || LABELS[state];
    if (state !== "connected" && waiting) {
      text += ` · ${waiting} note${waiting === 1 ? "" : "s"} waiting to be sent`;
    }
    statusEl.textContent = text;
    statusEl.className = `connection ${state}`;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function connect() {
    clearTimeout(retryTimer);
    if (refusal) return;
    if (!navigator.onLine) {
      setState("offline");
      return;
    }
    setState("reconnecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    socket = ws;
    ws.onopen = () => {
      if (socket !== ws) return;
      lastHeard = Date.now();
      sync();
      startHeartbeat();
    };
    ws.onmessage = (message) => {
      if (socket !== ws) return;
      lastHeard = Date.now();
      handle(JSON.parse(message.data));
    };
    ws.onclose = (closed) => {
      if (socket !== ws) return;
      dropSocket();
      if (closed.code in REFUSED) {
        refusal = REFUSED[closed.code];
        setState("offline");
        return;
      }
      scheduleReconnect();
    };
  }

  function dropSocket() {
    const ws = socket;
    socket = null;
    stopHeartbeat();
    sentAt.clear();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
  }

  function scheduleReconnect() {
    setState(navigator.onLine ? "reconnecting" : "offline");
    if (!navigator.onLine) return; // the "online" event reconnects
    // Exponential backoff with full jitter, so a restarted server is not hit
    // by every client at the same instant.
    const ceiling = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
    attempt += 1;
    retryTimer = setTimeout(connect, 250 + Math.random() * ceiling);
  }

  function startHeartbeat() {
    stopHeartbeat();
    heartbeatTimer = setInterval(() => {
      // A socket that went silent (no pong to our pings) is dead even if the
      // browser has not noticed: drop it and connect again.
      if (Date.now() - lastHeard > HEARTBEAT_MS * 2.5) {
        dropSocket();
        scheduleReconnect();
        return;
      }
      send({ type: "ping" });
      sendOutbox();
    }, HEARTBEAT_MS);
  }

  function stopHeartbeat() {
    clearInterval(heartbeatTimer);
  }

  let syncTimer = null;

  // Ask for everything after our revision. A replay that never completes (the
  // request was refused, the answer lost) is asked for again.
  function sync() {
    syncing = true;
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => socket && sync(), SYNC_TIMEOUT_MS);
    send({ type: "hello", since: revision });
  }

  function resync() {
    if (!syncing) sync();
  }

  window.addEventListener("online", () => {
    attempt = 0;
    connect();
  });
  window.addEventListener("offline", () => {
    dropSocket();
    setState("offline");
  });

  // --- Messages from the server ------------------------------------------------

  function handle(message) {
    switch (message.type) {
      case "note":
        applyChange(message, applyNote);
        break;
      case "event":
        applyChange(message, applyEvent);
        break;
      case "panel":
        replacePanel(message);
        break;
      case "synced":
        syncing = false;
        clearTimeout(syncTimer);
        attempt = 0;
        revision = Math.max(revision, message.revision);
        clockOffset = Date.parse(message.now) - Date.now();
        setState("connected");
        sendOutbox();
        break;
      case "ack":
        forget(message.client_id);
        // The stored note may already be on the page (a reload rendered it)
        // while its pending copy is still shown: the copy goes in any case.
        removePending(message.client_id);
        applyChange(message.note, applyNote);
        sendOutbox();
        break;
      case "pong":
        clockOffset = Date.parse(message.now) - Date.now();
        if (message.revision > revision) resync();
        break;
      case "error":
        refuseNote(message);
        break;
    }
  }

  function applyChange(message, apply) {
    if (syncing) {
      apply(message); // a replay: every piece is applied by its own revision
    } else if (message.revision === revision + 1) {
      apply(message);
      revision = message.revision;
    } else if (message.revision > revision + 1) {
      apply(message); // safe: placed by seq, and the replay repeats it
      resync(); // something in between was lost: ask for it
    }
    // A revision at or below ours is already here.
  }

  function fromHTML(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function applyNote(note) {
    removePending(note.client_id);
    if ((noteRevisions.get(note.seq) || 0) >= note.revision) return;
    const existing = notesEl.querySelector(`.note[data-seq="${note.seq}"]`);
    // A change to a note older than the page holds: it arrives as it is then
    // if the person asks for earlier notes.
    if (!existing && !isLoaded(note.seq)) return;
    noteRevisions.set(note.seq, note.revision);
    if (note.deleted) {
      existing?.remove();
    } else {
      const item = prepare(fromHTML(note.html));
      if (existing) existing.replaceWith(item);
      else insertInOrder(item);
    }
    updateEmpty();
  }

  // The timeline's order: a note by its seq; an event after the note with its
  // after_seq (and after earlier events there); pending notes last.
  function position(el) {
    if (el.dataset.seq) return [Number(el.dataset.seq), 0, 0];
    if (el.dataset.afterSeq) return [Number(el.dataset.afterSeq), 1, Number(el.dataset.revision)];
    return [Infinity, 0, 0];
  }

  function before(a, b) {
    for (let i = 0; i < 3; i += 1) if (a[i] !== b[i]) return a[i] < b[i];
    return false;
  }

  function insertInOrder(item) {
    const place = position(item);
    const next = Array.from(notesEl.children).find((el) => before(place, position(el)));
    notesEl.insertBefore(item, next || null);
  }

  function applyEvent(event) {
    if (notesEl.querySelector(`.event[data-revision="${event.revision}"]`)) return;
    if (!isLoaded(event.after_seq + 1)) return;
    const item = fromHTML(event.html);
    insertInOrder(applyFilters(item));
    updateEmpty();
    const hiddenAlert = item.matches(".other-tenant") && root.dataset.otherTenants === "hide";
    if (!syncing && !hiddenAlert) {
      const level = item.querySelector(".level-badge")?.textContent.trim();
      const summary = item.querySelector(".event-summary")?.textContent.trim() || "";
      announce(level ? `${level}: ${summary}` : summary);
    }
  }

  const panelRevisions = new Map();

  function replacePanel(panel) {
    const old = document.getElementById(panel.id);
    // Panels are rendered on several threads and processes: one rendered
    // before the one already shown must not replace it.
    if (!old || (panelRevisions.get(panel.id) || 0) > panel.revision) return;
    panelRevisions.set(panel.id, panel.revision);
    const focused = old.contains(document.activeElement) ? document.activeElement.id : "";
    const fresh = fromHTML(panel.html);
    if (old.tagName === "SELECT" && fresh.querySelector(`option[value="${CSS.escape(old.value)}"]`)) {
      fresh.value = old.value; // the person's choice survives a refresh of the choices
    }
    old.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    // The facilitator's choice for other tenants' alerts applies to the whole page.
    if (fresh.dataset.otherTenants) root.dataset.otherTenants = fresh.dataset.otherTenants;
    if (focused) document.getElementById(focused)?.focus();
    tick();
  }

  function refuseNote(message) {
    showError(message.message);
    if (!message.client_id) return;
    // The server will never take this note as it is. It leaves the outbox but
    // stays on the page, marked, with its text, until the author dismisses it.
    forget(message.client_id);
    const item = notesEl.querySelector(
      `.note.pending[data-client-id="${CSS.escape(message.client_id)}"]`,
    );
    if (!item) return;
    item.classList.add("refused");
    item.querySelector(".note-meta").textContent = `Not sent: ${message.message}`;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link";
    dismiss.dataset.action = "dismiss";
    dismiss.textContent = "Dismiss";
    item.append(dismiss);
  }

  // --- The timeline on the page --------------------------------------------------

  function prepare(item) {
    const own = item.dataset.author === me;
    const actions = item.querySelector(".note-actions");
    if (actions) actions.hidden = !own;
    applyFilters(item);
    return item;
  }

  function addPending(entry) {
    const item = document.createElement("div");
    item.setAttribute("role", "listitem");
    item.className = `note pending kind-${entry.kind}`;
    item.dataset.clientId = entry.client_id;
    item.dataset.kind = entry.kind;
    item.dataset.author = me;
    const meta = document.createElement("p");
    meta.className = "note-meta";
    const kind = kindEl.querySelector(`option[value="${entry.kind}"]`)?.textContent || entry.kind;
    meta.textContent = `${kind} · ${root.dataset.username} · waiting to be sent`;
    const text = document.createElement("p");
    text.className = "note-text";
    text.textContent = entry.text;
    item.append(meta, text);
    notesEl.append(applyFilters(item) || item);
    updateEmpty();
  }

  function removePending(clientId) {
    notesEl.querySelector(`.note.pending[data-client-id="${CSS.escape(clientId || "")}"]`)?.remove();
  }

  function updateEmpty() {
    const empty = document.querySelector("[data-empty-notes]");
    if (empty) empty.hidden = notesEl.children.length > 0;
  }

  function applyFilters(item) {
    const kind = filters.kind?.value;
    const author = filters.author?.value;
    const items = item ? [item] : notesEl.children;
    for (const el of items) {
      if (el.classList.contains("event")) {
        el.hidden = Boolean(kind || author); // a filtered view shows notes only
      } else {
        el.hidden = Boolean((kind && el.dataset.kind !== kind) || (author && el.dataset.author !== author));
      }
    }
    return item;
  }

  // --- Writing ---------------------------------------------------------------------

  function showError(text) {
    errorsEl.textContent = text;
  }

  function submitNote() {
    const text = textEl.value;
    if (!text.trim()) {
      showError("Write the note before sending it.");
      textEl.focus();
      return;
    }
    showError("");
    const entry = {
      client_id: newClientId(),
      kind: kindEl.value,
      text,
      goal: document.getElementById("note-goal").value || null,
      at: Date.now(),
    };
    keep(entry);
    addPending(entry);
    textEl.value = "";
    sendOutbox();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitNote();
  });

  textEl.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitNote();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.code === "KeyN") {
      event.preventDefault();
      textEl.focus();
    }
    const digit = /^Digit([1-9])$/.exec(event.code);
    if (digit && Number(digit[1]) <= kindEl.options.length) {
      event.preventDefault();
      kindEl.selectedIndex = Number(digit[1]) - 1;
      announce(`Type: ${kindEl.options[kindEl.selectedIndex].textContent}`);
    }
  });

  for (const select of Object.values(filters)) {
    select?.addEventListener("change", () => applyFilters());
  }

  notesEl.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button?.dataset.action === "dismiss") {
      button.closest(".note")?.remove();
      updateEmpty();
      return;
    }
    const item = button?.closest(".note[data-seq]");
    if (!item) return;
    const seq = Number(item.dataset.seq);
    if (state !== "connected") {
      showError("Edits and deletions need the connection; they were not sent.");
      return;
    }
    if (button.dataset.action === "delete") {
      if (window.confirm("Delete this note for everyone?")) send({ type: "delete_note", seq });
    } else if (button.dataset.action === "edit") {
      startEditing(item, seq);
    } else if (button.dataset.action === "save") {
      send({ type: "edit_note", seq, text: item.querySelector("textarea").value });
    } else if (button.dataset.action === "cancel") {
      item.replaceWith(prepare(item._original));
    }
  });

  function startEditing(item, seq) {
    const editor = item.cloneNode(true);
    editor._original = item;
    const textarea = document.createElement("textarea");
    textarea.value = item.querySelector(".note-text").textContent;
    textarea.maxLength = textEl.maxLength;
    textarea.id = `edit-note-${seq}`;
    textarea.setAttribute("aria-label", "Edit text");
    editor.querySelector(".note-text").replaceWith(textarea);
    editor.querySelector(".note-actions").innerHTML =
      '<button type="button" class="link" data-action="save">Save</button> ' +
      '<button type="button" class="link" data-action="cancel">Cancel</button>';
    item.replaceWith(editor);
    textarea.focus();
  }

  // --- Clocks ----------------------------------------------------------------------

  function serverNow() {
    return Date.now() + clockOffset;
  }

  function mmss(ms) {
    const total = Math.max(0, Math.round(ms / 1000));
    const minutes = Math.floor(total / 60);
    return `${String(minutes).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
  }

  let announcedDue = "";

  function tick() {
    const live = document.getElementById("live-state");
    if (!live) return;
    const data = live.dataset;
    const clock = live.querySelector("[data-clock]");
    const timebox = Number(data.timebox) * 60000;
    if (clock && data.startedAt) {
      const end = data.endedAt ? Date.parse(data.endedAt) : serverNow();
      const elapsed = end - Date.parse(data.startedAt);
      clock.textContent =
        elapsed > timebox
          ? `${mmss(elapsed)} — over the ${mmss(timebox)} timebox by ${mmss(elapsed - timebox)}`
          : `${mmss(elapsed)} of ${mmss(timebox)}`;
    }
    const rotation = live.querySelector("[data-rotation]");
    if (!rotation) return;
    const next = document.querySelector("[data-next-handover]")?.dataset.nextHandover;
    if (data.rotationPaused) {
      rotation.textContent = `Rotation paused with ${mmss(Number(data.rotationPaused) * 1000)} left`;
    } else if (data.rotationDue) {
      const left = Date.parse(data.rotationDue) - serverNow();
      if (left > 0) {
        rotation.textContent = `Next handover in ${mmss(left)}${next ? `: ${next}` : ""}`;
      } else {
        rotation.textContent = `Time to hand over${next ? `: ${next}` : ""}`;
        if (announcedDue !== data.rotationDue) {
          announcedDue = data.rotationDue;
          announce(rotation.textContent);
        }
      }
    }
  }

  function announce(text) {
    if (announcer) announcer.textContent = text;
  }

  // --- Earlier notes -----------------------------------------------------------------

  // The page holds the latest notes; `earliest` is the seq of the oldest one
  // here while older ones exist on the server (0 once the start is here).
  const earlierButton = document.getElementById("load-earlier");
  let earliest = Number(notesEl.dataset.earlier) || 0;

  function isLoaded(seq) {
    return !earliest || seq >= earliest;
  }

  async function loadEarlier() {
    earlierButton.disabled = true;
    try {
      const response = await fetch(`${earlierButton.dataset.url}?before=${earliest}`, {
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const template = document.createElement("template");
      template.innerHTML = await response.text();
      let count = 0;
      for (const item of Array.from(template.content.children)) {
        if (item.dataset.seq) {
          const seq = Number(item.dataset.seq);
          if (notesEl.querySelector(`.note[data-seq="${seq}"]`)) continue;
          noteRevisions.set(seq, Number(item.dataset.revision));
          insertInOrder(applyFilters(prepare(item)));
          count += 1;
        } else if (!notesEl.querySelector(`.event[data-revision="${item.dataset.revision}"]`)) {
          insertInOrder(applyFilters(item));
        }
      }
      earliest = Number(response.headers.get("X-Earlier")) || 0;
      earlierButton.parentElement.hidden = !earliest;
      announce(`${count} earlier notes shown`);
      updateEmpty();
    } catch (error) {
      showError("Earlier notes could not be loaded; try again.");
    } finally {
      earlierButton.disabled = false;
    }
  }

  earlierButton?.addEventListener("click", loadEarlier);

  // --- The alerts stream -------------------------------------------------------------

  // Beside the timeline or not: each person's choice, kept per session in this
  // browser. Log watchers see it unless they closed it.
  const alertsToggle = document.getElementById("alerts-toggle");
  const alertsStream = document.getElementById("alerts-stream");
  const alertsKey = `ensemble.alerts-open.${root.dataset.session}`;

  function showAlerts(open) {
    alertsStream.hidden = !open;
    alertsToggle.setAttribute("aria-pressed", String(open));
  }

  if (alertsToggle && alertsStream) {
    let saved = null;
    try {
      saved = localStorage.getItem(alertsKey);
    } catch (error) {
      saved = null; // storage refused: the default stands
    }
    showAlerts(saved === null ? root.dataset.alertsOpen === "true" : saved === "true");
    alertsToggle.addEventListener("click", () => {
      const open = alertsStream.hidden;
      showAlerts(open);
      try {
        localStorage.setItem(alertsKey, String(open));
      } catch (error) {
        // not kept past this page; nothing else to do
      }
    });
  }

  // --- Start ---------------------------------------------------------------------------

  for (const item of notesEl.querySelectorAll(".note[data-seq]")) {
    noteRevisions.set(Number(item.dataset.seq), Number(item.dataset.revision));
    prepare(item);
  }
  for (const entry of readOutbox()) {
    // Stored already (its acknowledgement was lost before a reload): the page shows it.
    if (notesEl.querySelector(`.note[data-seq][data-client-id="${CSS.escape(entry.client_id)}"]`)) {
      forget(entry.client_id);
    } else {
      addPending(entry);
    }
  }
  // The plain form would post with a fixed client id; the client makes its own.
  form.querySelector('input[name="client_id"]')?.remove();
  setInterval(tick, 1000);
  tick();
  renderStatus();
  connect();
})();
