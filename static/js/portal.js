// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Show times in the browser's zone (the server renders them in the scan's or the shop's zone).
  function localize(root) {
    var fmt;
    try {
      // dateStyle/timeStyle cannot be combined with timeZoneName: spell the parts out.
      fmt = new Intl.DateTimeFormat(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "numeric", minute: "2-digit", timeZoneName: "short"
      });
    } catch (e) { return; }
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.title = el.textContent.trim();
        el.textContent = fmt.format(when);
      }
    });
  }
  // Pickup fields only matter for a pickup.
  function togglePickup(root) {
    (root || document).querySelectorAll("#return-form").forEach(function (form) {
      var pickup = form.querySelector(".pickup");
      if (!pickup) return;
      var chosen = form.querySelector("input[name=method]:checked");
      pickup.hidden = !(chosen && chosen.value === "pickup");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localize(); togglePickup(); });
  document.addEventListener("htmx:afterSwap", function (e) { localize(e.target); togglePickup(e.target.parentNode || document); });
  document.addEventListener("change", function (e) {
    if (e.target && e.target.name === "method") togglePickup();
  });
})();
