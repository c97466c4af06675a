/* Inbox keyboard shortcuts and small conveniences. No build step; loaded with defer.
   j/k move through the ticket list, Enter opens, x selects; r reply, n note, e solve on a
   ticket; ? shows the overlay. Keys are ignored while typing in a field. */
(function () {
  "use strict";

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return el.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tr[data-ticket-url]"));
  }

  function current() {
    return document.querySelector("tr[data-ticket-url].is-current");
  }

  function move(step) {
    var list = rows();
    if (!list.length) return;
    var at = list.indexOf(current());
    var next = at < 0 ? 0 : Math.min(list.length - 1, Math.max(0, at + step));
    list.forEach(function (r) { r.classList.remove("is-current"); });
    list[next].classList.add("is-current");
    list[next].scrollIntoView({ block: "nearest" });
    try { sessionStorage.setItem("inbox-current", list[next].dataset.ticketUrl); } catch (e) { /* private mode */ }
  }

  function composer(kind) {
    var box = document.getElementById("composer");
    if (!box) return false;
    var radio = box.querySelector('input[name="kind"][value="' + kind + '"]');
    if (radio) radio.checked = true;
    var text = box.querySelector("textarea");
    if (text) text.focus();
    return true;
  }

  function overlay(show) {
    var dlg = document.getElementById("shortcuts");
    if (!dlg) return;
    if (show === undefined) show = !dlg.open;
    if (show && !dlg.open) dlg.showModal();
    if (!show && dlg.open) dlg.close();
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.metaKey || ev.ctrlKey || ev.altKey) return;
    if (typing(ev.target)) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    // Enter on a focused button or link is that control's, not "open the highlighted row".
    if (ev.key === "Enter" && ev.target.closest && ev.target.closest("button, a, summary, dialog")) return;
    var handled = true;
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter":
      case "o": {
        var row = current();
        if (row) window.location.href = row.dataset.ticketUrl; else handled = false;
        break;
      }
      case "x": {
        var r = current();
        var box = r && r.querySelector('input[type="checkbox"]');
        if (box) { box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); }
        else handled = false;
        break;
      }
      case "r": handled = composer("reply"); break;
      case "n": handled = composer("note"); break;
      case "e": {
        var solve = document.querySelector("[data-shortcut=solve]");
        if (solve && !solve.disabled) solve.click(); else handled = false;
        break;
      }
      case "?": overlay(); break;
      default: handled = false;
    }
    if (handled) ev.preventDefault();
  });

  // The page's words for "n tickets selected", in the reader's language: the template renders
  // them ({{ bulk_texts|json_script:"bulk-texts" }}, ngettext's two forms with "%(count)s").
  var bulkTexts = null;
  function selectedText(n) {
    if (bulkTexts === null) {
      var el = document.getElementById("bulk-texts");
      try { bulkTexts = el ? JSON.parse(el.textContent) : {}; } catch (e) { bulkTexts = {}; }
    }
    var form = n === 1 ? bulkTexts.one : bulkTexts.other;
    return form ? form.replace("%(count)s", String(n)) : String(n);
  }

  // The bulk bar: how many rows are selected, and "select all on this page".
  function syncBulk() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var boxes = form.querySelectorAll('input[name="ticket"]');
    var n = 0;
    boxes.forEach(function (b) { if (b.checked) n++; b.closest("tr").classList.toggle("is-selected", b.checked); });
    var out = document.getElementById("bulk-count");
    if (out) out.textContent = selectedText(n);
    var all = document.getElementById("select-all");
    if (all) { all.checked = n > 0 && n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
  }

  document.addEventListener("change", function (ev) {
    if (ev.target.id === "select-all") {
      document.querySelectorAll('#bulk-form input[name="ticket"]').forEach(function (b) { b.checked = ev.target.checked; });
    }
    if (ev.target.closest && ev.target.closest("#bulk-form")) syncBulk();
  });

  // Clicking a row (not its checkbox or a link) opens the ticket, like a mail client.
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest && ev.target.closest("tr[data-ticket-url]");
    if (!row || ev.target.closest("a, input, label, button")) return;
    window.location.href = row.dataset.ticketUrl;
  });

  function restore() {
    syncBulk();
    var url;
    try { url = sessionStorage.getItem("inbox-current"); } catch (e) { url = null; }
    if (!url || current()) return;
    rows().forEach(function (r) { if (r.dataset.ticketUrl === url) r.classList.add("is-current"); });
  }

  // Small helpers the templates use: dismiss a box, open the overlay, say whether I'm typing.
  document.addEventListener("click", function (ev) {
    var dismiss = ev.target.closest && ev.target.closest("[data-dismiss]");
    if (dismiss) {
      var box = dismiss.closest(dismiss.dataset.dismiss);
      if (box) box.remove();
    }
    if (ev.target.closest && ev.target.closest("[data-open-shortcuts]")) {
      ev.preventDefault();
      overlay(true);
    }
  });

  window.paydeskComposing = function () {
    var text = document.querySelector("#composer textarea");
    return text && text.value.trim() ? "1" : "";
  };

  // The presence heartbeat says whether this person is typing a reply (an hx-vals "js:"
  // expression would need eval, which the Content-Security-Policy forbids).
  document.addEventListener("htmx:configRequest", function (ev) {
    if (ev.detail.elt && ev.detail.elt.id === "presence") ev.detail.parameters.composing = window.paydeskComposing();
  });

  // The customer panel arrives from another part of the console; until it exists (404)
  // or if it fails, the slot says so calmly instead of "Loading" forever.
  document.addEventListener("htmx:responseError", function (ev) {
    var slot = ev.detail.elt;
    var fallback = slot && slot.querySelector && slot.querySelector("[data-panel-fallback]");
    if (fallback) fallback.textContent = fallback.dataset.panelFallback;
  });
  document.addEventListener("htmx:sendError", function (ev) {
    var fallback = ev.detail.elt && ev.detail.elt.querySelector && ev.detail.elt.querySelector("[data-panel-fallback]");
    if (fallback) fallback.textContent = fallback.dataset.panelFallback;
  });

  // Leaving a ticket: tell the others at once rather than after the presence TTL.
  window.addEventListener("pagehide", function () {
    var el = document.getElementById("presence");
    if (!el || !navigator.sendBeacon) return;
    var token = "";
    try { token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { /* none */ }
    var data = new FormData();
    data.append("leave", "1");
    data.append("csrfmiddlewaretoken", token);
    navigator.sendBeacon(el.getAttribute("hx-post"), data);
  });

  document.addEventListener("DOMContentLoaded", restore);
  document.addEventListener("htmx:afterSettle", restore);
})();

/* The composer's files: each chosen file listed with its size, one over the limit marked (the
   server refuses it anyway, with the reason). */
(function () {
  "use strict";

  function size(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " B";
  }

  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input || input.name !== "files" || input.type !== "file") return;
    var list = input.closest(".composer-files").querySelector(".chosen-files");
    var max = parseInt(input.dataset.maxBytes || "0", 10);
    list.textContent = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var li = document.createElement("li");
      var name = document.createElement("span");
      name.textContent = file.name;
      var bytes = document.createElement("span");
      bytes.className = "faint";
      bytes.textContent = size(file.size);
      li.appendChild(name);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(bytes);
      if (max && file.size > max) {
        li.className = "is-over";
        li.title = input.dataset.overText || "";
      }
      list.appendChild(li);
    });
  });
})();
