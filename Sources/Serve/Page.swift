// `GET /`: one self-contained page (no external assets) to try the model by hand.

enum Page {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>rnn-dist</title>
    <style>
      body { font: 16px/1.45 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
      h1 { font-size: 1.4rem; margin-bottom: .2rem; }
      #model { color: #666; font-size: .9rem; margin-top: 0; }
      textarea { width: 100%; box-sizing: border-box; min-height: 9rem; font: inherit; padding: .5rem; }
      button { margin-top: .6rem; font: inherit; padding: .35rem 1.2rem; }
      #result { margin-top: 1.2rem; }
      #label { font-size: 1.3rem; font-weight: 600; }
      .row { display: flex; align-items: center; gap: .6rem; margin: .25rem 0; }
      .name { width: 8rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
      .bar { height: .9rem; background: #3b7dd8; border-radius: 2px; }
      .error { color: #b00020; }
    </style>
    </head>
    <body>
    <h1>rnn-dist</h1>
    <p id="model">loading…</p>
    <form id="form">
      <label for="text">A text to classify</label>
      <textarea id="text" name="text" placeholder="This movie was…" required></textarea>
      <button id="submit" type="submit">Classify</button>
    </form>
    <div id="result" aria-live="polite"></div>
    <script>
    "use strict";
    const result = document.getElementById("result");
    fetch("/healthz").then(r => r.json()).then(h => {
      document.getElementById("model").textContent = h.model + " · classes: " + h.classes.join(", ");
    }).catch(() => { document.getElementById("model").textContent = ""; });
    document.getElementById("form").addEventListener("submit", async event => {
      event.preventDefault();
      const text = document.getElementById("text").value;
      result.textContent = "…";
      try {
        const r = await fetch("/v1/predict", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ texts: [text] }) });
        const body = await r.json();
        if (!r.ok) throw new Error(body.error || r.statusText);
        const p = body.predictions[0];
        result.replaceChildren();
        const label = document.createElement("div");
        label.id = "label";
        label.textContent = p.label;
        result.append(label);
        const entries = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
        for (const [name, prob] of entries) {
          const row = document.createElement("div");
          row.className = "row";
          const n = document.createElement("span"); n.className = "name"; n.textContent = name;
          const v = document.createElement("span"); v.className = "value"; v.textContent = prob.toFixed(4);
          const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = (prob * 20) + "rem";
          row.append(n, v, bar);
          result.append(row);
        }
      } catch (e) {
        result.replaceChildren();
        const d = document.createElement("div"); d.className = "error"; d.textContent = "Error: " + e.message;
        result.append(d);
      }
    });
    </script>
    </body>
    </html>
    """#
}
