// Errors of htmx requests, in plain words, where they happened: a form's own
// errors come back as its 400/409/422 partial and are swapped in (base.html's
// htmx-config); any other failure (403, 404, a server error, no connection) is
// written into the element that asked, replacing what an earlier failure wrote.
(function () {
  function say(status) {
    if (status === 0) return "The server could not be reached. Check the connection; this part tries again by itself.";
    if (status === 403) return "Your role in this brand does not allow this.";
    if (status === 404) return "This is no longer here, or not in a brand of yours. Reload the page to see what is.";
    if (status === 405) return "This cannot be done that way. Reload the page and try again.";
    if (status === 429) return "Too many requests at once. Wait a moment and try again.";
    if (status >= 500) return "Something went wrong on the server (error " + status + "). Try again in a moment.";
    return "The request failed (error " + status + "). Reload the page and try again.";
  }

  function show(event, status) {
    const source = event.detail.elt;
    const place = (source && source.closest("[data-errors-here]")) || event.detail.target || source;
    if (!place) return;
    let note = place.querySelector(":scope > .htmx-error");
    if (!note) {
      note = document.createElement("p");
      note.className = "message error htmx-error";
      note.setAttribute("role", "alert");
      place.prepend(note);
    }
    note.textContent = say(status);
  }

  document.addEventListener("htmx:responseError", function (event) {
    show(event, event.detail.xhr.status);
  });
  document.addEventListener("htmx:sendError", function (event) {
    show(event, 0);
  });
  // A success clears the note of an earlier failure in the same place.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) return;
    const source = event.detail.elt;
    const place = source && source.closest("[data-errors-here]");
    const note = place && place.querySelector(":scope > .htmx-error");
    if (note) note.remove();
  });
})();
