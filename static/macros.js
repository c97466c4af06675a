/* The macro editor's placeholder picker: a button inserts its placeholder ({{ contact.name }})
   at the cursor of the text box last focused (the first one until then), and tells the form
   (an input event), so the live preview follows. No framework, no inline script (CSP). */
(function () {
  "use strict";
  var last = null;

  function boxes() { return document.querySelectorAll("#macro-form textarea[data-macro-body]"); }

  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("#macro-form textarea[data-macro-body]")) last = event.target;
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-placeholder]");
    if (!button) return;
    event.preventDefault();
    var box = last || boxes()[0];
    if (!box) return;
    var text = "{{ " + button.getAttribute("data-placeholder") + " }}";
    var start = box.selectionStart == null ? box.value.length : box.selectionStart;
    var end = box.selectionEnd == null ? start : box.selectionEnd;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.focus();
    box.setSelectionRange(start + text.length, start + text.length);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
