// The consent decision is hidden for 0.8 s each time this page comes to the front (the window
// gains focus, the tab is shown, the page returns from the back-forward cache), not only after
// it loads: a page elsewhere can load this one behind a popup, then have the second click of a
// double-click land here the moment the popup closes.
(function () {
  var actions = document.querySelector(".decision .actions");
  if (!actions) return;
  var timer = 0;
  function rearm() {
    actions.classList.add("rearmed");
    clearTimeout(timer);
    timer = setTimeout(function () { actions.classList.remove("rearmed"); }, 800);
  }
  window.addEventListener("focus", function (e) { if (e.target === window) rearm(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) rearm(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") rearm();
  });
})();
