// A table wider than the page scrolls inside its own box (site.css, phone width).
// A keyboard user must be able to scroll it too, so while it overflows it is
// focusable (arrow keys scroll it) and named after its caption or the heading
// before it; it stops being a tab stop when it fits again.
(function () {
  "use strict";

  function nameOf(table) {
    if (table.caption) return null;
    let element = table.previousElementSibling;
    while (element && !/^H[1-6]$/.test(element.tagName)) element = element.previousElementSibling;
    return element ? element.textContent.trim() : "Table";
  }

  function mark() {
    document.querySelectorAll("main table").forEach(function (table) {
      const overflows = table.scrollWidth > table.clientWidth + 1;
      if (overflows && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.dataset.scrollRegion = "";
        const name = nameOf(table);
        if (name && !table.hasAttribute("aria-label")) {
          table.setAttribute("aria-label", name + " (scrolls sideways)");
          table.dataset.scrollRegionLabel = "";
        }
      } else if (!overflows && table.dataset.scrollRegion !== undefined) {
        table.removeAttribute("tabindex");
        delete table.dataset.scrollRegion;
        if (table.dataset.scrollRegionLabel !== undefined) {
          table.removeAttribute("aria-label");
          delete table.dataset.scrollRegionLabel;
        }
      }
    });
  }

  let pending = null;
  function later() {
    if (pending === null) pending = window.requestAnimationFrame(function () { pending = null; mark(); });
  }
  document.addEventListener("DOMContentLoaded", mark);
  window.addEventListener("resize", later);
  document.addEventListener("htmx:afterSettle", later);  // parts of a page replaced in place
})();
