// A refusal answered with a fragment (the form again, with its message: 400, 403, 404, 409 ...)
// is swapped in place by htmx. With DEBUG on, django-htmx's script replaces the whole page with
// any 400/403/404 answer (to show Django's error page): listening first, in the capture phase,
// we keep it from seeing the fragments the server marked. htmx goes on as usual.
document.addEventListener("htmx:beforeOnLoad", function (event) {
  var xhr = event.detail && event.detail.xhr;
  if (xhr && xhr.getResponseHeader("X-Paydesk-Fragment")) event.stopImmediatePropagation();
}, true);
