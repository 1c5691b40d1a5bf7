/*
 * app.js — progressive enhancement for the staff dashboard.
 *
 * CSP-safe (served under script-src 'self'): no eval, no inline handlers,
 * no inline styles. Every page works without this file; it only adds:
 *
 *   [data-copy-target="#id"]   on a button: copies the text of the element
 *                              matched by the selector to the clipboard, then
 *                              shows "Copied" for a moment and sets
 *                              data-copied="true" on the button meanwhile.
 *                              Put the label in a child <span class="btn-label">
 *                              if the button also holds an icon or spinner.
 *
 *   <form data-confirm-input="NAME">  typed confirmation: the form's submit
 *                              buttons stay disabled until the input named
 *                              NAME has a value equal to that input's
 *                              data-expected attribute (surrounding spaces
 *                              ignored; an empty data-expected never matches).
 *                              Render the buttons enabled (so the form still
 *                              works without JS); the server must verify the
 *                              value anyway.
 *
 *   [data-dismiss]             on a button inside a .flash: removes the flash.
 *
 *   .nav [aria-current=page]   on narrow screens, where the navigation links
 *                              scroll sideways, the current page's link is
 *                              scrolled into view on load and on resize.
 *
 * Works with or without htmx: content swapped in by htmx is handled through
 * event delegation and by re-scanning on htmx:load / htmx:afterSwap.
 */
(function () {
  "use strict";

  var COPIED_MS = 2000;

  // ---------------------------------------------------------------- helpers

  function closest(el, selector) {
    while (el && el.nodeType === 1) {
      if (matches(el, selector)) {
        return el;
      }
      el = el.parentElement;
    }
    return null;
  }

  function matches(el, selector) {
    var fn = el.matches || el.msMatchesSelector || el.webkitMatchesSelector;
    return fn ? fn.call(el, selector) : false;
  }

  var liveRegion = null;

  // announce tells screen-reader users about a change that is otherwise
  // only visible (the copy button's label).
  function announce(message) {
    if (!document.body) {
      return;
    }
    if (!liveRegion || !document.body.contains(liveRegion)) {
      liveRegion = document.createElement("div");
      liveRegion.className = "sr-only";
      liveRegion.setAttribute("role", "status");
      liveRegion.setAttribute("aria-live", "polite");
      document.body.appendChild(liveRegion);
    }
    liveRegion.textContent = "";
    window.setTimeout(function () {
      liveRegion.textContent = message;
    }, 50);
  }

  // ------------------------------------------------------------------- copy

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () {
          return true;
        },
        function () {
          return legacyCopy(text);
        }
      );
    }
    return Promise.resolve(legacyCopy(text));
  }

  // legacyCopy copies through a temporary, selected, off-screen textarea.
  function legacyCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.setAttribute("aria-hidden", "true");
    ta.className = "sr-only";
    document.body.appendChild(ta);
    var active = document.activeElement;
    ta.select();
    ta.setSelectionRange(0, text.length);
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(ta);
    if (active && typeof active.focus === "function") {
      active.focus();
    }
    return ok;
  }

  // selectContents selects the target's text so the user can copy by hand.
  function selectContents(el) {
    if (typeof el.select === "function") {
      el.select();
      return;
    }
    var sel = window.getSelection && window.getSelection();
    if (!sel) {
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(el);
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function labelNode(button) {
    return button.querySelector(".btn-label") || button;
  }

  function flashLabel(button, text, copied) {
    var node = labelNode(button);
    if (!button.hasAttribute("data-label")) {
      button.setAttribute("data-label", node.textContent);
    }
    node.textContent = text;
    button.setAttribute("data-copied", copied ? "true" : "false");
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      node.textContent = button.getAttribute("data-label");
      button.removeAttribute("data-label");
      button.removeAttribute("data-copied");
    }, COPIED_MS);
  }

  function onCopyClick(button, event) {
    var selector = button.getAttribute("data-copy-target");
    var target = null;
    try {
      target = selector ? document.querySelector(selector) : null;
    } catch (e) {
      target = null; // invalid selector
    }
    if (!target) {
      return;
    }
    event.preventDefault();
    var text = target.tagName === "TEXTAREA" || target.tagName === "INPUT" ? target.value : target.textContent;
    copyText(text).then(function (ok) {
      if (ok) {
        flashLabel(button, "Copied", true);
        announce("Copied to clipboard");
      } else {
        selectContents(target);
        flashLabel(button, "Copy failed", false);
        announce("Copy failed. The text is selected; press Control C to copy.");
      }
    });
  }

  // ---------------------------------------------------- typed confirmation

  function confirmInput(form) {
    var name = form.getAttribute("data-confirm-input");
    if (!name || !form.elements) {
      return null;
    }
    var input = form.elements.namedItem(name);
    // namedItem returns a RadioNodeList when several controls share a name.
    if (input && !input.tagName && input.length) {
      input = input[0];
    }
    return input && input.tagName ? input : null;
  }

  function confirmed(form) {
    var input = confirmInput(form);
    if (!input) {
      return true; // misconfigured: do not lock the user out
    }
    var expected = input.getAttribute("data-expected");
    if (expected === null) {
      return true;
    }
    return input.value.trim() === expected.trim() && expected.trim() !== "";
  }

  function submitButtons(form) {
    var out = [];
    var els = form.elements;
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if ((el.tagName === "BUTTON" || el.tagName === "INPUT") && el.type === "submit") {
        out.push(el);
      }
    }
    return out;
  }

  function updateConfirm(form) {
    var ok = confirmed(form);
    var buttons = submitButtons(form);
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = !ok;
    }
    form.setAttribute("data-confirmed", ok ? "true" : "false");
  }

  function scanConfirmForms(root) {
    root = root && root.querySelectorAll ? root : document;
    if (root.nodeType === 1 && matches(root, "form[data-confirm-input]")) {
      updateConfirm(root);
    }
    var forms = root.querySelectorAll("form[data-confirm-input]");
    for (var i = 0; i < forms.length; i++) {
      updateConfirm(forms[i]);
    }
  }

  function confirmFormOf(el) {
    var form = el && el.form ? el.form : closest(el, "form");
    return form && form.hasAttribute("data-confirm-input") ? form : null;
  }

  // --------------------------------------------------------------- wiring

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target || target.nodeType !== 1) {
      target = target && target.parentElement;
    }
    if (!target) {
      return;
    }
    var copyButton = closest(target, "[data-copy-target]");
    if (copyButton) {
      onCopyClick(copyButton, event);
      return;
    }
    var dismiss = closest(target, "[data-dismiss]");
    if (dismiss) {
      var flash = closest(dismiss, ".flash");
      if (flash && flash.parentNode) {
        event.preventDefault();
        flash.parentNode.removeChild(flash);
      }
    }
  });

  function onEdit(event) {
    var form = confirmFormOf(event.target);
    if (form) {
      updateConfirm(form);
    }
  }

  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);

  // Capture phase: runs before htmx's own submit listener on the form, so an
  // unconfirmed form never gets submitted (e.g. by pressing Enter).
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (form && form.hasAttribute && form.hasAttribute("data-confirm-input") && !confirmed(form)) {
        event.preventDefault();
        event.stopPropagation();
        updateConfirm(form);
        var input = confirmInput(form);
        if (input) {
          input.focus();
        }
      }
    },
    true
  );

  // The browser may restore form values on back/forward navigation.
  window.addEventListener("pageshow", function () {
    scanConfirmForms(document);
  });

  document.addEventListener("htmx:load", function (event) {
    scanConfirmForms(event.target);
  });
  // After an outerHTML swap the event target may be detached: re-scan all.
  document.addEventListener("htmx:afterSwap", function () {
    scanConfirmForms(document);
  });

  // showCurrentNavLink scrolls the navigation row (scrollable on narrow screens)
  // so that the current page's link is visible; the page itself does not move.
  function showCurrentNavLink() {
    var link = document.querySelector('.nav [aria-current="page"]');
    var row = link && closest(link, ".nav > nav, .nav > .nav-links");
    if (!row || row.scrollWidth <= row.clientWidth) {
      return;
    }
    var linkBox = link.getBoundingClientRect();
    var rowBox = row.getBoundingClientRect();
    if (linkBox.right > rowBox.right) {
      row.scrollLeft += linkBox.right - rowBox.right + 16;
    } else if (linkBox.left < rowBox.left) {
      row.scrollLeft -= rowBox.left - linkBox.left + 16;
    }
  }

  function onReady() {
    scanConfirmForms(document);
    showCurrentNavLink();
  }

  window.addEventListener("resize", showCurrentNavLink);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onReady);
  } else {
    onReady();
  }
})();
