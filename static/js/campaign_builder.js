// The campaign builder's live count and cost: images = personas × looks × poses ×
// formats × variants (no looks or poses: one, the personas as they are), seconds
// from the throughput workers measured for each persona's model.
(function () {
  const form = document.getElementById("campaign-form");
  const out = document.getElementById("live-estimate");
  const data = JSON.parse(document.getElementById("campaign-data").textContent);
  const checked = (name) => Array.from(form.querySelectorAll(`input[name="${name}"]:checked`)).map((i) => i.value);

  function update() {
    const versions = checked("versions");
    const perPersona = Math.max(checked("looks").length, 1) * Math.max(checked("poses").length, 1) *
      checked("formats").length * Math.max(parseInt(form.elements.variants.value, 10) || 0, 0);
    const images = versions.length * perPersona;
    let seconds = 0;
    const unknown = new Set();
    const bases = new Set();
    for (const version of versions) {
      const model = data.models[version];
      const measured = data.throughput[model];
      if (!measured) { unknown.add(model); continue; }
      seconds += perPersona / measured.images_per_second;
      bases.add(`${measured.images_per_second.toFixed(2)} images/s on ${measured.device}, batch ${measured.batch_size}, measured ${measured.measured_at}`);
    }
    let text = `${images} image${images === 1 ? "" : "s"}`;
    if (images && !unknown.size) text += `, about ${seconds.toFixed(1)} s of worker time (${Array.from(bases).join("; ")})`;
    if (unknown.size) text += `; worker time unknown until a worker has rendered ${Array.from(unknown).join(", ")}`;
    out.textContent = text + ".";
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
