// Gatehouse portal: the little script the pages need (served from /portal/assets, as
// the Content-Security-Policy allows no inline script). Pages work without it, except
// the copy buttons.
(function () {
  "use strict";

  function announce(text) {
    var live = document.getElementById("live");
    if (live) {
      live.textContent = text;
    }
  }

  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = "value" in source ? source.value : source.textContent;
    var selectIt = function () {
      if (source.select) {
        source.select();
      }
      announce("Selected: press Ctrl+C to copy.");
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () {
        var label = button.getAttribute("data-label") || button.textContent;
        button.setAttribute("data-label", label);
        button.textContent = "Copied";
        announce("Copied.");
        window.setTimeout(function () {
          button.textContent = label;
        }, 2000);
      }, selectIt);
    } else {
      selectIt();
    }
  });

  // Forms that destroy something ask first: <form data-confirm="question">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
