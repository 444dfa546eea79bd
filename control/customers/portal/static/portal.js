// The portal's only behaviour: copying a secret shown once (the clipboard API). No inline
// script anywhere: the pages load this file, as the CSP demands.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = document.getElementById("copy-status");
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
        if (status) {
          status.textContent = "The secret is on your clipboard.";
        }
      } catch (refused) {
        // The browser may refuse the clipboard (no permission): the field stays selectable.
        field.select();
        if (status) {
          status.textContent = "Copying was refused: the secret is selected, copy it by hand.";
        }
      }
    });
    button.hidden = false; // shown once it works: without this script it would do nothing
  });
});
