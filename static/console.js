// Small behaviours that would otherwise be inline handlers, which the Content-Security-Policy
// forbids (script-src 'self'): a button with data-dismiss="form" closes its form; an input
// with data-select-on-focus selects its text. Loaded on every page by base.html.
(function () {
  "use strict";

  // Until templates/actions/_confirm.html (being rewritten) uses the data attributes, its
  // inline onclick / onfocus handlers are matched as they are written there.
  var DISMISS = '[data-dismiss="form"], button[onclick="this.closest(\'form\').remove()"]';
  var SELECT = '[data-select-on-focus], input[onfocus="this.select()"]';

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest(DISMISS);
    var form = button && button.closest("form");
    if (form) form.remove();
  });
  document.addEventListener("focusin", function (ev) {
    if (ev.target.matches && ev.target.matches(SELECT) && ev.target.select) ev.target.select();
  });
})();
