// Copy buttons: <button data-copy="ELEMENT-ID"> copies that element's text.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.textContent.trim()).then(function () {
    b.textContent = "Copied";
  });
});
document.querySelectorAll("button[data-copy]").forEach(function (b) { b.hidden = false; });
