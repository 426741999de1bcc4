// The calendar's drag: drop a scheduled post on another day (month view, it keeps
// its time of day) or hour (week view, it keeps its minutes). The move is POSTed to
// the post's reschedule URL, which answers JSON; the server's refusal (time past,
// approval lapsed, disclosure) is shown as it words it. Without JavaScript, or from
// the keyboard, the "Move…" form beside each post does the same.
(function () {
  const calendar = document.getElementById("calendar");
  if (!calendar) return;
  const status = document.getElementById("calendar-status");
  const csrf = calendar.querySelector("input[name=csrfmiddlewaretoken]");
  const cellSelector = "td[data-date], td[data-slot]";
  let dragged = null;

  function say(text, isError) {
    status.hidden = false;
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function target(cell, local) {
    // local is "YYYY-MM-DDTHH:MM:SS" on the dashboard's clock; no time-zone arithmetic here.
    if (cell.dataset.date) return cell.dataset.date + local.slice(10);
    return cell.dataset.slot + local.slice(13);
  }

  calendar.addEventListener("dragstart", (event) => {
    const chip = event.target.closest && event.target.closest(".post-chip[draggable=true]");
    if (!chip) return;
    dragged = chip;
    chip.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", chip.dataset.post);
  });

  calendar.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    calendar.querySelectorAll(".drop-target").forEach((cell) => cell.classList.remove("drop-target"));
  });

  calendar.addEventListener("dragover", (event) => {
    const cell = event.target.closest(cellSelector);
    if (!dragged || !cell) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    calendar.querySelectorAll(".drop-target").forEach((c) => c !== cell && c.classList.remove("drop-target"));
    cell.classList.add("drop-target");
  });

  calendar.addEventListener("drop", async (event) => {
    const cell = event.target.closest(cellSelector);
    if (!dragged || !cell) return;
    event.preventDefault();
    cell.classList.remove("drop-target");
    const chip = dragged;
    dragged = null;
    if (chip.parentElement === cell) return;
    const when = target(cell, chip.dataset.local);
    const body = new FormData();
    body.append("csrfmiddlewaretoken", csrf ? csrf.value : "");
    body.append("publish_at", when);
    say("Moving post " + chip.dataset.post + "…");
    let answer;
    try {
      const response = await fetch(chip.dataset.reschedule, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const json = (response.headers.get("Content-Type") || "").includes("application/json");
      answer = json ? await response.json() : { ok: false, error: "the server answered HTTP " + response.status + "." };
    } catch (error) {
      answer = { ok: false, error: "the server could not be reached (" + error.message + ")." };
    }
    if (!answer.ok) {
      say("Post " + chip.dataset.post + " was not moved: " + answer.error, true);
      return;
    }
    chip.dataset.local = answer.publish_at;
    const time = chip.querySelector("time");
    if (time) time.textContent = answer.publish_at.slice(11, 16);
    const input = chip.querySelector("input[name=publish_at]");
    if (input) input.value = answer.publish_at;
    const firstRun = cell.querySelector(".run");
    cell.insertBefore(chip, firstRun);
    say("Post " + chip.dataset.post + ": " + answer.message);
  });
})();
