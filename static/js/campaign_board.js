// Live progress on the campaign board: fetch the board's fragment every two
// seconds until the campaign is finished.
(function () {
  const board = document.getElementById("board");
  if (!board || board.dataset.finished === "1") return;
  const url = board.dataset.fragmentUrl;
  async function poll() {
    try {
      const response = await fetch(url, { headers: { "X-Requested-With": "fetch" } });
      if (response.ok) {
        board.innerHTML = await response.text();
        const state = board.querySelector("#progress").dataset.state;
        if (!["running", "queued"].includes(state)) return;
      }
    } catch (error) {
      // The server may be restarting: try again on the next tick.
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
