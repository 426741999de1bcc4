// Keyboard review of the approval queue: j / k move between images, x selects the
// focused one, a approves it, r selects it and moves to the reason for rejecting.
(function () {
  const form = document.getElementById("queue");
  if (!form) return;
  const items = Array.from(form.querySelectorAll(".queue-item"));
  const only = document.getElementById("only");

  // A per-image button acts on that image alone; the bulk buttons on the selection.
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[type=submit]");
    if (button) only.value = button.dataset.only || "";
  });

  function focused() {
    return document.activeElement && document.activeElement.closest(".queue-item");
  }

  function move(step) {
    const current = focused();
    const index = current ? items.indexOf(current) + step : 0;
    const next = items[Math.max(0, Math.min(items.length - 1, index))];
    if (next) next.focus();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea")) return;
    const item = focused();
    const box = item && item.querySelector("input[name=asset]");
    if (event.key === "j") move(1);
    else if (event.key === "k") move(-1);
    else if (event.key === "x" && box && !box.disabled) box.checked = !box.checked;
    else if (event.key === "a" && item && item.dataset.decide === "1") {
      const approve = item.querySelector("button[value=approve]");
      if (approve) approve.click();
    } else if (event.key === "r" && box && !box.disabled) {
      box.checked = true;
      const reason = document.getElementById("reason-code");
      if (reason) reason.focus();
    } else return;
    event.preventDefault();
  });
})();
