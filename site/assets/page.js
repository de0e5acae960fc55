// The docs site's page behaviour, all progressive: a copy button on every code block, the
// language tabs of the reference's examples (one choice for the whole site, remembered in
// localStorage), and the Menu button that folds the navigation on a phone.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var LANGUAGE_KEY = "videovector-docs-language";

  function addCopyButtons() {
    var blocks = document.querySelectorAll("main pre");
    Array.prototype.forEach.call(blocks, function (pre) {
      var wrapper = document.createElement("div");
      wrapper.className = "code-block";
      pre.parentNode.insertBefore(wrapper, pre);
      wrapper.appendChild(pre);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy the code");
      button.addEventListener("click", function () {
        var text = pre.innerText.replace(/\n$/, "");
        var done = function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Select and copy"; });
        } else {
          button.textContent = "Select and copy";
        }
      });
      wrapper.appendChild(button);
    });
  }

  function showLanguage(language) {
    var groups = document.querySelectorAll(".examples");
    Array.prototype.forEach.call(groups, function (group) {
      var tabs = group.querySelectorAll('[role="tab"]');
      var known = Array.prototype.some.call(tabs, function (t) { return t.getAttribute("data-lang") === language; });
      if (!known) return;
      Array.prototype.forEach.call(tabs, function (tab) {
        tab.setAttribute("aria-selected", String(tab.getAttribute("data-lang") === language));
        tab.tabIndex = tab.getAttribute("data-lang") === language ? 0 : -1;
      });
      var panels = group.querySelectorAll('[role="tabpanel"]');
      Array.prototype.forEach.call(panels, function (panel) {
        panel.hidden = panel.getAttribute("data-lang") !== language;
      });
    });
  }

  function wireTabs() {
    var first = document.querySelector('.examples [role="tab"]');
    if (!first) return;
    var saved = null;
    try { saved = window.localStorage.getItem(LANGUAGE_KEY); } catch (e) { /* storage off */ }
    showLanguage(saved || first.getAttribute("data-lang"));
    document.addEventListener("click", function (event) {
      var tab = event.target.closest ? event.target.closest('.examples [role="tab"]') : null;
      if (!tab) return;
      var language = tab.getAttribute("data-lang");
      // Keep the clicked tab where it was on the screen while every group switches.
      var before = tab.getBoundingClientRect().top;
      showLanguage(language);
      window.scrollBy(0, tab.getBoundingClientRect().top - before);
      try { window.localStorage.setItem(LANGUAGE_KEY, language); } catch (e) { /* storage off */ }
    });
    document.addEventListener("keydown", function (event) {
      var tab = event.target.closest ? event.target.closest('.examples [role="tab"]') : null;
      if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
      var tabs = Array.prototype.slice.call(tab.parentNode.querySelectorAll('[role="tab"]'));
      var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      next.click();
      next.focus();
    });
  }

  function wireMenu() {
    var button = document.querySelector(".nav-toggle");
    var nav = document.querySelector("nav.sidebar");
    if (!button || !nav) return;
    button.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      button.setAttribute("aria-expanded", String(open));
    });
  }

  // The navigation shows the current page's entry (the reference's are far down the list).
  var current = document.querySelector('nav.sidebar a[aria-current="page"]');
  if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest" });

  addCopyButtons();
  wireTabs();
  wireMenu();
})();
