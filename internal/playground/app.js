// Keeps the shown screen current: the bot works in the background (approvers'
// DMs, the audit thread), so the pane is fetched again every 700 ms and
// replaced when it changed, except while the visitor types in a modal. No
// framework, no build step.
(function () {
  var pane = document.getElementById("pane");
  if (!pane) return;
  var query = pane.getAttribute("data-query");
  var last = pane.innerHTML;
  function refresh() {
    fetch("/pane?" + query, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        // Not while the visitor types in a modal: its text would be lost.
        var typing = pane.querySelector("form.modal textarea, form.modal input[type=text]");
        if (typing && (typing === document.activeElement || typing.value !== "")) return;
        if (html !== null && html !== last) {
          last = html;
          pane.innerHTML = html;
        }
      })
      .catch(function () {})
      .finally(function () { setTimeout(refresh, 700); });
  }
  setTimeout(refresh, 700);
})();
