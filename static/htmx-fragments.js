// A refusal answered with a fragment (the form again, with its message: 400, 403, 404, 409, 502 ...)
// is marked by the server (X-Paydesk-Fragment) and swapped in place like a success.
// With DEBUG on, django-htmx's script replaces the whole page with any 400/403/404 answer (to show
// Django's error page): listening first, in the capture phase, we keep it from seeing the
// fragments the server marked. htmx goes on as usual.
function paydeskFragment(event) {
  var xhr = event.detail && event.detail.xhr;
  return Boolean(xhr && xhr.getResponseHeader("X-Paydesk-Fragment"));
}
document.addEventListener("htmx:beforeOnLoad", function (event) {
  if (paydeskFragment(event)) event.stopImmediatePropagation();
}, true);
document.addEventListener("htmx:beforeSwap", function (event) {
  if (paydeskFragment(event)) { event.detail.shouldSwap = true; event.detail.isError = false; }
});
// Buttons that close what they sit in (a panel action's "Cancel"), without inline script.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-dismiss]");
  if (button) { var box = button.closest(button.getAttribute("data-dismiss")); if (box) box.remove(); }
});
// A link to copy is selected when it gets the focus.
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
});
