// The studio's own script: copy buttons and the Consume panel's tabs. Live updates are htmx's.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Over plain http to another host the Clipboard API is absent: select and copy instead.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const note = button.parentElement.querySelector(".copied");
  copyText(source.textContent.trim()).then(
    () => { button.textContent = "Copied ✓"; if (note) note.textContent = "Copied to the clipboard."; },
    () => { button.textContent = "Copy failed"; if (note) note.textContent = "Select the text and copy it."; },
  );
  setTimeout(() => { button.textContent = "Copy"; }, 2500);
});

function selectTab(tab) {
  const list = tab.closest("[role=tablist]");
  for (const other of list.querySelectorAll("[role=tab]")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
}

document.addEventListener("click", (event) => {
  const tab = event.target.closest("[role=tab]");
  if (tab) selectTab(tab);
});

document.addEventListener("keydown", (event) => {
  const tab = event.target.closest && event.target.closest("[role=tab]");
  if (!tab || !["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) return;
  const tabs = [...tab.closest("[role=tablist]").querySelectorAll("[role=tab]")];
  let i = tabs.indexOf(tab);
  if (event.key === "ArrowLeft") i = (i - 1 + tabs.length) % tabs.length;
  if (event.key === "ArrowRight") i = (i + 1) % tabs.length;
  if (event.key === "Home") i = 0;
  if (event.key === "End") i = tabs.length - 1;
  selectTab(tabs[i]);
  tabs[i].focus();
  event.preventDefault();
});

// A log that is being followed stays scrolled to its end, unless the reader scrolled up.
document.addEventListener("htmx:beforeSwap", (event) => {
  const log = event.detail.target && event.detail.target.closest("pre.log");
  if (log) log.dataset.stick = String(log.scrollTop + log.clientHeight >= log.scrollHeight - 8);
});
document.addEventListener("htmx:afterSettle", (event) => {
  const log = document.querySelector("pre.log");
  if (log && log.dataset.stick !== "false") log.scrollTop = log.scrollHeight;
});
