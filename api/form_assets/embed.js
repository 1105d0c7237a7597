/* leadflow embeddable form: a script element with src="https://leads.example.com/f/<form_id>.js"
   renders the form after its own <script> tag (or into data-target="#id") and posts it as
   JSON to leadflow; the page's origin must be one of the form's allowed origins.
   data-lang="zh-CN" | "en" picks the language (default: the browser's). */
(function (config) {
  "use strict";
  var script = document.currentScript;
  var wanted = (script && script.getAttribute("data-lang")) || navigator.language || "en";
  var lang = /^zh/i.test(wanted) ? "zh-CN" : "en";
  var ui = config.ui[lang];
  var form = config.form;

  function text(value) {
    if (!value) return "";
    return value[lang] || value.en || value["zh-CN"] || "";
  }
  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") node.textContent = attributes[name];
      else node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var root = element("div", { "class": "leadflow-form", "data-form-id": form.id, lang: lang });
  var style = element("style", { text:
    ".leadflow-form{max-width:34rem;font:inherit}" +
    ".leadflow-form .lf-field{margin:0 0 1rem}" +
    ".leadflow-form label{display:block;font-weight:600;margin-bottom:.25rem}" +
    ".leadflow-form .lf-check label{font-weight:400}" +
    ".leadflow-form input[type=text],.leadflow-form input[type=email],.leadflow-form input[type=tel]," +
    ".leadflow-form select{width:100%;box-sizing:border-box;padding:.6rem;font:inherit}" +
    ".leadflow-form .lf-error{color:#c81e1e;font-size:.875rem;margin:.25rem 0 0}" +
    ".leadflow-form .lf-hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}" });
  root.appendChild(style);
  root.appendChild(element("h2", { text: text(form.title) }));
  if (form.description) root.appendChild(element("p", { text: text(form.description) }));
  var general = element("div", { "class": "lf-error", role: "alert" });
  root.appendChild(general);
  var node = element("form", { novalidate: "" });
  root.appendChild(node);

  var controls = {};
  var errors = {};
  function addField(field) {
    var id = "lf-" + form.id + "-" + field.name;
    var control;
    if (field.type === "hidden") {
      control = element("input", { type: "hidden", name: field.name, value: field.value || "" });
      node.appendChild(control);
      controls[field.name] = control;
      return;
    }
    var wrapper = element("div", { "class": "lf-field" + (field.type === "checkbox" ? " lf-check" : "") });
    var label = element("label", { "for": id });
    if (field.type === "checkbox") {
      control = element("input", { type: "checkbox", id: id, name: field.name, value: "on" });
      label.appendChild(control);
      label.appendChild(document.createTextNode(" " + text(field.label) + (field.required ? " *" : "")));
      wrapper.appendChild(label);
    } else {
      label.textContent = text(field.label) + (field.required ? " *" : "");
      wrapper.appendChild(label);
      if (field.type === "select") {
        control = element("select", { id: id, name: field.name }, [element("option", { value: "", text: ui.choose })]);
        field.options.forEach(function (option) {
          control.appendChild(element("option", { value: option.value, text: text(option.label) }));
        });
      } else {
        var kind = field.type === "email" ? "email" : field.type === "phone" ? "tel" : "text";
        control = element("input", { type: kind, id: id, name: field.name, maxlength: String(field.max_length) });
        if (field.placeholder) control.setAttribute("placeholder", text(field.placeholder));
      }
      wrapper.appendChild(control);
    }
    if (field.required) control.setAttribute("required", "");
    var error = element("p", { "class": "lf-error", id: id + "-error" });
    wrapper.appendChild(error);
    node.appendChild(wrapper);
    controls[field.name] = control;
    errors[field.name] = error;
  }
  form.fields.forEach(addField);
  if (form.consent) {
    addField({ name: "consent", type: "checkbox", label: form.consent.text, required: form.consent.required });
  }
  var honeypot = element("input", { type: "text", name: "homepage", tabindex: "-1", autocomplete: "off" });
  node.appendChild(element("div", { "class": "lf-hp", "aria-hidden": "true" }, [honeypot]));
  var button = element("button", { type: "submit", text: text(form.submit_label) });
  node.appendChild(button);

  function clearErrors() {
    general.textContent = "";
    Object.keys(errors).forEach(function (name) { errors[name].textContent = ""; });
  }
  function showErrors(details) {
    details.forEach(function (detail) {
      var name = (detail.path || "").replace(/^\//, "");
      var message = ui.messages[detail.message] || detail.message;
      if (errors[name]) errors[name].textContent = message;
      else general.textContent = message;
    });
    if (!general.textContent) general.textContent = ui.fix;
  }

  node.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var values = {
      _lf_token: config.token, lang: lang, homepage: honeypot.value,
      page_url: location.href, referrer: document.referrer
    };
    var query = new URLSearchParams(location.search);
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "campaign", "channel"]
      .forEach(function (name) { if (query.get(name)) values[name] = query.get(name); });
    Object.keys(controls).forEach(function (name) {
      var control = controls[name];
      values[name] = control.type === "checkbox" ? control.checked : control.value;
    });
    button.disabled = true;
    fetch(config.action, {
      method: "POST", mode: "cors", credentials: "omit",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(values)
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    }).then(function (answer) {
      if (answer.status === 200) {
        if (answer.body.redirect_url) { window.location.href = answer.body.redirect_url; return; }
        root.replaceChildren(element("p", { "class": "lf-thanks", role: "status", text: answer.body.message }));
        return;
      }
      var error = answer.body.error || {};
      if (answer.status === 422 && error.details && error.details.length) showErrors(error.details);
      else if (answer.status === 429) general.textContent = ui.too_many;
      else general.textContent = ui.failed;
    }).catch(function () {
      general.textContent = ui.failed;
    }).then(function () { button.disabled = false; });
  });

  var target = script && script.getAttribute("data-target");
  var host = target ? document.querySelector(target) : null;
  if (host) host.appendChild(root);
  else if (script && script.parentNode) script.parentNode.insertBefore(root, script.nextSibling);
  else document.body.appendChild(root);
})(__LEADFLOW_FORM_CONFIG__);
