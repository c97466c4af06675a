// A refusal answered with a fragment (the form again, with its message: 400, 403, 404, 409 ...;
// a Stripe failure's 502) is swapped in place. With DEBUG on, django-htmx's script replaces the
// whole page with any 400/403/404 answer (to show Django's error page): listening first, in the
// capture phase, we keep it from seeing the fragments the server marked.
document.addEventListener("htmx:beforeOnLoad", function (event) {
  var xhr = event.detail && event.detail.xhr;
  if (xhr && xhr.getResponseHeader("X-Paydesk-Fragment")) event.stopImmediatePropagation();
}, true);

// htmx swaps no 4xx/5xx answer by itself; the fragments the server marked are meant to be.
document.addEventListener("htmx:beforeSwap", function (event) {
  var xhr = event.detail && event.detail.xhr;
  if (xhr && xhr.status >= 400 && xhr.getResponseHeader("X-Paydesk-Fragment")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
