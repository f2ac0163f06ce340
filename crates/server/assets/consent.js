// The consent decision is hidden for 0.8 s each time this page comes to the front (the window
// gains focus, the tab is shown, the page returns from the back-forward cache), not only after
// it loads: a page elsewhere can load this one behind a popup, then have the second click of a
// double-click land here the moment the popup closes.
(function () {
  var actions = document.querySelector(".decision .actions");
  if (!actions) return;
  var timer = 0;
  // Set on the element itself (CSSOM, which the page's CSP allows), not through a class: a
  // stylesheet cached from before this script would not know the class.
  function rearm() {
    actions.style.visibility = "hidden";
    clearTimeout(timer);
    timer = setTimeout(function () { actions.style.visibility = ""; }, 800);
  }
  window.addEventListener("focus", function (e) { if (e.target === window) rearm(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) rearm(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") rearm();
  });
})();
