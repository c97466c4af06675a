// Small behaviours that would otherwise be inline handlers, which the Content-Security-Policy
// forbids (script-src 'self'): a button with data-dismiss="form" closes its form; an input
// with data-select-on-focus selects its text. Loaded on every page by base.html.
(function () {
  "use strict";

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest('[data-dismiss="form"]');
    var form = button && button.closest("form");
    if (form) form.remove();
  });
  document.addEventListener("focusin", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-select-on-focus]") && ev.target.select) ev.target.select();
  });
})();
