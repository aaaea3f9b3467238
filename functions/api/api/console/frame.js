// The email preview's frame (frame.html, served with a policy of its own): the console posts it an email's HTML and
// this writes it in. The console frames it with sandbox="allow-scripts" and nothing else, so its origin is opaque
// (no access to the console, its sessionStorage or the key) and it cannot open windows, submit forms or navigate
// the console; its policy runs no script but this file, so the email's styles show and its scripts do not.
// A classic script, not a module: a module from an opaque origin would be a CORS request.
"use strict";

(function () {
  // The frame's URL's origin, which is the console's (the document's own origin is opaque).
  const consoleOrigin = location.origin;

  function show(html) {
    // DOMParser never runs the scripts it parses; what could act on insertion (a refresh, a base URL) is dropped.
    const parsed = new DOMParser().parseFromString(html, "text/html");
    for (const node of parsed.querySelectorAll("script, meta[http-equiv], base")) node.remove();
    document.replaceChild(document.adoptNode(parsed.documentElement), document.documentElement);
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || event.origin !== consoleOrigin) return;
    if (event.data && typeof event.data.html === "string") show(event.data.html);
  });

  // A preview does not follow links: the message's links act (they confirm an account, spend a reset link).
  document.addEventListener(
    "click",
    (event) => {
      if (event.target instanceof Element && event.target.closest("a, area")) event.preventDefault();
    },
    true,
  );
})();
