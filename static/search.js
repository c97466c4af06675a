// The search results page (templates/search/results.html loads it; the CSP forbids inline
// script): ArrowDown/ArrowUp move between the results' links, from the top bar's search box
// too; Enter follows the focused link (a link's own behaviour); Escape goes back to the box.
(function () {
  "use strict";

  function hits() {
    var box = document.querySelector("[data-search-results]");
    return box ? Array.prototype.slice.call(box.querySelectorAll("a.search-hit")) : [];
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var input = document.querySelector('.topbar form.search input[name="q"]');
    var links = hits();
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var inBox = document.activeElement === input;
    if (at < 0 && !inBox) return;
    if (ev.key === "ArrowDown") {
      links[Math.min(at + 1, links.length - 1)].focus();
    } else if (ev.key === "ArrowUp") {
      if (at <= 0) { if (input) input.focus(); } else { links[at - 1].focus(); }
    } else if (ev.key === "Escape" && at >= 0 && input) {
      input.focus();
    } else {
      return;
    }
    ev.preventDefault();
  });
})();
