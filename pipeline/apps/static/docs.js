// The API reference, drawn from /openapi.json with this service's own script (no CDN, no eval).
(function () {
  "use strict";
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function typeOf(s) {
    if (!s) return "";
    if (s.$ref) return s.$ref.split("/").pop();
    if (s.anyOf) return s.anyOf.map(typeOf).join(" | ");
    if (s.type === "array") return typeOf(s.items) + "[]";
    return s.type || (s.enum ? "enum" : "object");
  }
  function table(head, rows) {
    var t = el("table"), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) { row.appendChild(el("td", null, c)); });
      t.appendChild(row);
    });
    return t;
  }
  function operation(path, method, op) {
    var box = el("div", "op");
    var head = el("div");
    head.appendChild(el("span", "method", method.toUpperCase()));
    head.appendChild(el("span", "path", path));
    box.appendChild(head);
    if (op.summary) box.appendChild(el("div", null, op.summary));
    if (op.description) box.appendChild(el("div", "muted", op.description));
    var params = op.parameters || [];
    if (params.length) {
      box.appendChild(table(["parameter", "in", "type", "required", "description"], params.map(function (p) {
        return [p.name, p["in"], typeOf(p.schema), p.required ? "yes" : "", p.description || (p.schema && p.schema.description) || ""];
      })));
    }
    var body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
    if (body) box.appendChild(el("div", null, "body: " + typeOf(body.schema)));
    box.appendChild(el("div", "muted", "responses: " + Object.keys(op.responses || {}).join(", ")));
    return box;
  }
  function schema(name, s) {
    var box = el("div", "schema");
    box.appendChild(el("h3", null, name));
    var req = s.required || [];
    box.appendChild(table(["field", "type", "required", "description"], Object.keys(s.properties || {}).map(function (k) {
      var p = s.properties[k];
      return [k, typeOf(p), req.indexOf(k) >= 0 ? "yes" : "", p.description || ""];
    })));
    return box;
  }
  fetch("/openapi.json").then(function (resp) {
    if (resp.status === 401) throw new Error("log in on the main page (/) first, or call /openapi.json with your token");
    if (!resp.ok) throw new Error("the service answered " + resp.status);
    return resp.json();
  }).then(function (spec) {
    $("api-title").textContent = spec.info.title + " API";
    $("api-version").textContent = "version " + spec.info.version;
    $("api-description").textContent = spec.info.description || "";
    var ops = $("operations");
    Object.keys(spec.paths).forEach(function (path) {
      Object.keys(spec.paths[path]).forEach(function (m) { ops.appendChild(operation(path, m, spec.paths[path][m])); });
    });
    var schemas = (spec.components && spec.components.schemas) || {};
    Object.keys(schemas).forEach(function (n) { $("schemas").appendChild(schema(n, schemas[n])); });
  }).catch(function (e) {
    $("docs-error").textContent = e.message;
    $("docs-error").hidden = false;
  });
})();
