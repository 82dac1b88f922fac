// An effect's parameters as form controls, built from its JSON schema in GET /v1/effects.
// Only the parameters a person sets are sent: a preset's values apply under them, as the API does.

const COLOUR = "colour";

function choicesOf(schema) {
  if (schema.enum) return schema.enum;
  const listed = (schema.anyOf || []).find((option) => option.enum);
  return listed ? listed.enum : null;
}

function acceptsColour(schema) {
  return Boolean(schema.pattern || (schema.anyOf || []).some((option) => option.pattern));
}

function numberSchema(schema) {
  if (schema.type === "integer" || schema.type === "number") return schema;
  return (schema.anyOf || []).find((option) => option.type === "integer" || option.type === "number") || null;
}

function hex(value) {
  return "#" + String(value).replace(/^#/, "");
}

export class ParamsForm {
  constructor(fieldset) {
    this.fieldset = fieldset;
    this.controls = new Map();
  }

  /** Replaces the controls with the effect's own; `listings` marks models that are not installed. */
  show(parameters, listings) {
    this.fieldset.querySelectorAll(".field").forEach((field) => field.remove());
    this.controls.clear();
    for (const [name, schema] of Object.entries(parameters)) {
      if (name === "preset") continue;
      this.fieldset.append(this.#field(name, schema, listings[name]));
    }
  }

  /** Shows a preset's values in the fields a person has not set. */
  applyPreset(sets) {
    for (const [name, control] of this.controls) {
      if (control.touched) continue;
      control.set(name in sets ? sets[name] : control.initial);
    }
  }

  /** The parameters a person set, as query pairs. */
  touched() {
    const pairs = [];
    for (const [name, control] of this.controls) {
      if (control.touched && control.value() !== "") pairs.push([name, control.value()]);
    }
    return pairs;
  }

  #field(name, schema, listing) {
    const field = document.createElement("div");
    field.className = "field";
    const id = `param-${name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = name.replaceAll("_", " ");
    field.append(label);
    const control = this.#control(id, schema, listing);
    field.append(...control.elements);
    if (schema.description) {
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.id = `${id}-hint`;
      hint.textContent = schema.description;
      control.elements[0].setAttribute("aria-describedby", hint.id);
      field.append(hint);
    }
    for (const element of control.elements) {
      element.addEventListener("input", () => (control.touched = true));
      element.addEventListener("change", () => (control.touched = true));
    }
    control.initial = schema.default ?? "";
    control.set(control.initial);
    this.controls.set(name, control);
    return field;
  }

  #control(id, schema, listing) {
    const choices = choicesOf(schema);
    if (choices) return this.#select(id, choices, acceptsColour(schema), listing);
    if (acceptsColour(schema)) return this.#colour(id);
    const number = numberSchema(schema);
    if (number) return this.#number(id, number);
    const input = Object.assign(document.createElement("input"), { id, type: "text" });
    return { elements: [input], touched: false, value: () => input.value, set: (v) => (input.value = v ?? "") };
  }

  #select(id, choices, withColour, listing) {
    const select = Object.assign(document.createElement("select"), { id });
    for (const choice of choices) {
      const missing = listing && listing[choice] && !listing[choice].available;
      select.append(new Option(missing ? `${choice} (not installed)` : choice, choice));
    }
    if (!withColour) {
      return { elements: [select], touched: false, value: () => select.value, set: (v) => (select.value = v) };
    }
    select.append(new Option("a colour…", COLOUR));
    const picker = Object.assign(document.createElement("input"), { type: "color", id: `${id}-colour`, value: "#1e90ff" });
    picker.setAttribute("aria-label", "background colour");
    const sync = () => (picker.hidden = select.value !== COLOUR);
    select.addEventListener("change", sync);
    return {
      elements: [select, picker],
      touched: false,
      value: () => (select.value === COLOUR ? picker.value.slice(1) : select.value),
      set: (v) => {
        if (choices.includes(v)) select.value = v;
        else {
          select.value = COLOUR;
          picker.value = hex(v);
        }
        sync();
      },
    };
  }

  #colour(id) {
    const picker = Object.assign(document.createElement("input"), { type: "color", id });
    return { elements: [picker], touched: false, value: () => picker.value.slice(1), set: (v) => (picker.value = hex(v)) };
  }

  #number(id, schema) {
    const input = Object.assign(document.createElement("input"), { id, type: "number", inputMode: "decimal" });
    const low = schema.minimum ?? schema.exclusiveMinimum;
    if (low !== undefined) input.min = low;
    if (schema.maximum !== undefined) input.max = schema.maximum;
    input.step = schema.type === "integer" ? "1" : "any";
    return { elements: [input], touched: false, value: () => input.value, set: (v) => (input.value = v ?? "") };
  }
}
