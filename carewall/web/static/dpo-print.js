// "Print this letter": shown only when this script runs; the browser's own print works without it.
for (const button of document.querySelectorAll("[data-cw-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
