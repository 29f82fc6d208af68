// crmd's console: what JavaScript adds to pages that work without it.
// - a rule box counts its audience as you type, and marks the column of a mistake;
// - a campaign form previews its message for real customers as you type;
// - "Suggest" buttons ask the AI plugins without leaving the page;
// - an upload shows its progress;
// - live pages follow their figures over Server-Sent Events;
// - a "Copy" button copies a key shown once.
// Everything the server sends is put in with textContent; the only markup taken as it
// is, is the chart, which the server draws from numbers alone.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = null;
    try {
      data = await answer.json();
    } catch (e) {
      data = { error: { message: "crmd answered " + answer.status } };
    }
    return { ok: answer.ok, data };
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  // The text with the character at a 1-based column marked.
  function marked(text, column) {
    const box = el("div", null, "marked mono");
    const at = Math.max(0, Math.min(text.length, (column || 1) - 1));
    box.append(document.createTextNode(text.slice(0, at)));
    box.append(el("mark", text.slice(at, at + 1) || " "));
    box.append(document.createTextNode(text.slice(at + 1)));
    return box;
  }

  function showError(region, error, text) {
    region.replaceChildren();
    const message = el("p", error.message || "something went wrong", "error-text");
    message.setAttribute("role", "alert");
    region.append(message);
    const column = error.column || (error.details && error.details.column);
    if (column && text) {
      region.append(el("p", "At column " + column + ":", "muted"));
      region.append(marked(text, column));
    }
  }

  // -- the rule box ----------------------------------------------------------------
  function ruleBox(form) {
    const box = form.querySelector("[data-rule-input]");
    const region = form.querySelector("[data-rule-result]");
    if (!box || !region) return;
    let asked = 0;
    const count = debounce(async () => {
      const rule = box.value.trim();
      const mine = ++asked;
      if (!rule) {
        region.replaceChildren(el("p", "Type a rule to see who it finds.", "muted"));
        return;
      }
      region.setAttribute("aria-busy", "true");
      const { ok, data } = await post(form.dataset.countUrl, { rule });
      if (mine !== asked) return; // a newer rule was typed meanwhile
      region.removeAttribute("aria-busy");
      if (!ok || data.error) return showError(region, data.error || {}, rule);
      region.replaceChildren();
      const size = el("p", null);
      size.append(el("span", data.audienceSize.toLocaleString(), "count"));
      if (data.complete === false) {
        // A large audience is counted in the background: show how far, and ask again.
        const share = Math.floor(data.progress * 100);
        size.append(document.createTextNode(" customers so far, " + share + "% counted…"));
        region.setAttribute("aria-busy", "true");
        setTimeout(() => { if (mine === asked) count(); }, 1000);
      } else {
        size.append(document.createTextNode(data.audienceSize === 1 ? " customer" : " customers"));
        size.dataset.audienceSize = String(data.audienceSize);
      }
      region.append(size);
      if (data.sample.length) {
        const list = el("ul", null, "muted");
        for (const c of data.sample) list.append(el("li", c.name + " <" + c.email + ">"));
        region.append(list);
      }
    }, 250);
    box.addEventListener("input", count);
    if (box.value.trim()) count();
    box.form.addEventListener("crmd:rule-filled", count);
  }

  // -- suggestions -------------------------------------------------------------------
  function suggestRule(button) {
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const form = button.form;
      const words = form.querySelector("[data-suggest-words]");
      const target = form.querySelector("[data-rule-input]");
      const region = form.querySelector("[data-suggest-result]");
      button.disabled = true;
      const { ok, data } = await post(button.dataset.url, { text: words.value });
      button.disabled = false;
      region.replaceChildren();
      if (!ok || data.error) return showError(region, data.error || {});
      target.value = data.rule;
      region.append(el("p", "Suggested by " + data.source + ".", "muted"));
      form.dispatchEvent(new Event("crmd:rule-filled"));
    });
  }

  function suggestMessages(button) {
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const form = button.form;
      const region = form.querySelector("[data-messages-result]");
      const message = form.querySelector("[data-message-input]");
      button.disabled = true;
      const audience = audienceRule(form);
      const { ok, data } = await post(button.dataset.url, {
        objective: form.querySelector('[name="name"]').value,
        intent: form.querySelector('[name="intent"]')?.value || "",
        segment: audience.segment,
        rule: audience.rule,
      });
      button.disabled = false;
      region.replaceChildren();
      if (!ok || data.error) return showError(region, data.error || {});
      const list = el("ul", null, "previews");
      data.variants.forEach((text, i) => {
        const item = el("li", null, "preview");
        item.append(el("span", text));
        const use = el("button", "Use this message");
        use.type = "button";
        use.setAttribute("aria-label", "Use suggestion " + (i + 1));
        use.addEventListener("click", () => {
          message.value = text;
          message.dispatchEvent(new Event("input"));
        });
        item.append(document.createTextNode(" "));
        item.append(use);
        list.append(item);
      });
      region.append(list);
    });
  }

  // -- the campaign preview ------------------------------------------------------------
  function audienceRule(form) {
    const segment = form.querySelector('[name="segment"]');
    const rule = form.querySelector('[name="rule"]');
    return { segment: segment ? segment.value : "", rule: rule ? rule.value : "" };
  }

  function preview(form) {
    const region = form.querySelector("[data-preview-result]");
    const message = form.querySelector("[data-message-input]");
    if (!region || !message) return;
    let asked = 0;
    const render = debounce(async () => {
      const mine = ++asked;
      const audience = audienceRule(form);
      const subject = form.querySelector('[name="subject"]');
      const { ok, data } = await post(form.dataset.previewUrl, {
        message: message.value,
        subject: subject ? subject.value : "",
        segment: audience.segment,
        rule: audience.rule,
      });
      if (mine !== asked) return;
      if (!ok || data.error) {
        const field = data.field && form.querySelector('[name="' + data.field + '"]');
        const shown = field ? field.value : message.value;
        return showError(region, data.error || {}, shown);
      }
      region.replaceChildren();
      if (!data.previews.length) {
        region.append(el("p", "No customer in this audience to preview with.", "muted"));
      }
      for (const p of data.previews) {
        const item = el("div", null, "preview");
        item.append(el("div", "To " + p.name + " <" + p.email + ">", "to"));
        if (p.subject) item.append(el("div", p.subject, "subject"));
        item.append(el("div", p.text, "body"));
        region.append(item);
      }
      if (data.audienceSize !== undefined) {
        region.append(el("p", "Audience: " + data.audienceSize.toLocaleString() + " customers", "muted"));
      }
    }, 300);
    form.addEventListener("input", render);
    form.addEventListener("change", render);
    if (message.value.trim() && !region.querySelector(".preview")) render(); // a form kept
  }

  // -- uploads with a progress bar -------------------------------------------------------
  function upload(form) {
    const bar = form.querySelector("progress");
    const said = form.querySelector("[data-upload-status]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-CSRF-Token", csrf);
      bar.hidden = false;
      bar.value = 0;
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          bar.max = e.total;
          bar.value = e.loaded;
          said.textContent = "Uploading: " + Math.round((100 * e.loaded) / e.total) + "%";
        }
      });
      request.upload.addEventListener("load", () => {
        said.textContent = "Checking every row...";
      });
      request.addEventListener("load", () => {
        let data = {};
        try {
          data = JSON.parse(request.responseText);
        } catch (e) {
          data = { error: { message: "crmd answered " + request.status } };
        }
        if (request.status < 300 && data.location) {
          window.location.assign(data.location);
        } else {
          bar.hidden = true;
          said.textContent = "";
          showError(form.querySelector("[data-upload-error]"), data.error || {});
        }
      });
      request.addEventListener("error", () => {
        bar.hidden = true;
        said.textContent = "The upload was interrupted; try again.";
      });
      request.send(new FormData(form));
    });
  }

  // -- A/B variants: one slot at a time -------------------------------------------------
  // Without script every slot shows; with it, the filled ones (and a mistake's) and one
  // empty slot more each time "Add a variant" is pressed.
  function variantSlots(section) {
    const slots = Array.from(section.querySelectorAll("[data-variant-slot]"));
    const button = section.querySelector("[data-add-variant]");
    if (!slots.length || !button) return;
    const used = (slot) =>
      slot.querySelector(".problem") ||
      Array.from(slot.querySelectorAll("input, textarea")).some((f) => f.value.trim());
    let shown = 1;
    slots.forEach((slot, i) => { if (used(slot)) shown = i + 1; });
    const update = () => {
      slots.forEach((slot, i) => { slot.hidden = i >= shown; });
      button.hidden = shown >= slots.length;
    };
    button.addEventListener("click", () => {
      shown += 1;
      update();
      slots[shown - 1].querySelector("textarea").focus();
    });
    update();
  }

  // A "Copy" button copies the text of the element it names (a key shown once), and
  // says so in the status beside it. Without a script (or a clipboard) it stays hidden.
  function copyButton(button) {
    const source = document.getElementById(button.dataset.copy);
    const said = document.getElementById(button.dataset.copy + "-copied");
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        if (said) said.textContent = "Copied.";
      } catch (e) {
        if (said) said.textContent = "Could not copy: select the text and copy it.";
      }
    });
  }

  // -- live figures -----------------------------------------------------------------
  function redraw(chart, markup) {
    if (!chart || !markup) return;
    // drawn by crmd from numbers; parsed as SVG, never as HTML
    const svg = new DOMParser().parseFromString(markup, "image/svg+xml").documentElement;
    if (svg.nodeName === "svg") chart.replaceChildren(document.importNode(svg, true));
  }

  function live(region) {
    if (!window.EventSource || !region.dataset.live) return; // settled: nothing to follow
    const source = new EventSource(region.dataset.live);
    const status = region.dataset.status;
    source.addEventListener("figures", (event) => {
      const data = JSON.parse(event.data);
      for (const [name, value] of Object.entries(data.figures || {})) {
        for (const node of region.querySelectorAll('[data-figure="' + name + '"]')) {
          // a count, or a rate the server wrote already ("12.5%")
          node.textContent = typeof value === "string" ? value : Number(value).toLocaleString();
        }
      }
      // The badge says the status of the same read as the figures: they agree.
      if (data.status) {
        for (const badge of document.querySelectorAll("[data-status-badge] .status")) {
          badge.textContent = data.status;
          badge.className = "status status-" + data.status;
        }
      }
      redraw(region.querySelector("[data-chart]"), data.chart);
      redraw(document.querySelector("[data-chart-engagement]"), data.engagementChart);
      if (data.status && data.status !== status) {
        source.close();
        window.location.reload(); // the actions allowed, the errors: the page says them
      }
    });
    source.addEventListener("end", () => source.close());
    window.addEventListener("pagehide", () => source.close());
  }

  document.querySelectorAll("form[data-count-url]").forEach(ruleBox);
  document.querySelectorAll("button[data-suggest-rule]").forEach(suggestRule);
  document.querySelectorAll("button[data-suggest-messages]").forEach(suggestMessages);
  document.querySelectorAll("form[data-preview-url]").forEach(preview);
  document.querySelectorAll("form[data-upload]").forEach(upload);
  document.querySelectorAll("[data-live]").forEach(live);
  document.querySelectorAll("[data-ab-test]").forEach(variantSlots);
  document.querySelectorAll("button[data-copy]").forEach(copyButton);
})();
