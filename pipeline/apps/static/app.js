// tousu handler page: POST /v1/triage and lay the answer out for reading at a glance.
(function () {
  "use strict";
  var OWNER = { frontline: "一线处理人员", supervisor: "主管", senior_specialist: "资深投诉专员" };
  var DEPT = { legal: "法务", brand_pr: "品牌公关", regulator_liaison: "监管联络", security: "安保" };
  var SECTION = { general: "一般流程", negotiation: "协商谈判", mindset: "客户心理", perception: "心理效应",
    major: "重大投诉", special_customer: "特殊客户", compensation: "赔偿标准", apology: "认错与道歉",
    deadline: "处理时限", beyond_course: "补充规则" };
  var FACT = { amount: "金额", age: "年龄", date: "日期", percent: "百分比", policy_number: "保单号", phone: "电话",
    id_number: "身份证号", bank_card: "银行卡号", email: "邮箱", deadline: "客户期限", group_size: "人数",
    prior_complaints: "此前投诉次数", product: "产品", cue: "线索" };
  var HEAD = { cause: "投诉原因", mindset: "客户心理", risk_level: "升级风险" };

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  // a ranked label far below the first reads <1%, not 0%, which reads as 'ruled out'
  function pct(p) { return p === null || p === undefined ? "" : p < 0.005 ? "<1%" : Math.round(p * 100) + "%"; }

  function bar(name, p) {
    var li = el("li", "bar");
    li.appendChild(el("span", "name", name));
    var track = el("span", "track"), fill = el("span", "fill");
    fill.style.width = Math.max(0, Math.min(100, (p || 0) * 100)) + "%";
    track.appendChild(fill);
    li.appendChild(track);
    li.appendChild(el("span", "p", pct(p)));
    return li;
  }

  // The note with every piece of evidence marked (search by text; safe: built from text nodes).
  function highlighted(text, needles) {
    var box = document.createDocumentFragment();
    var spans = [];
    needles.forEach(function (n) {
      if (!n) return;
      var from = 0, i;
      while ((i = text.indexOf(n, from)) >= 0) { spans.push([i, i + n.length]); from = i + n.length; }
    });
    spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
    var pos = 0;
    spans.forEach(function (s) {
      if (s[0] < pos) return;
      box.appendChild(document.createTextNode(text.slice(pos, s[0])));
      box.appendChild(el("mark", null, text.slice(s[0], s[1])));
      pos = s[1];
    });
    box.appendChild(document.createTextNode(text.slice(pos)));
    return box;
  }

  function render(data, text) {
    var t = data.triage, plan = data.plan;
    $("model-version").textContent = "模型 " + data.model_version +
      (data.elapsed_ms !== undefined && data.elapsed_ms !== null ? " · " + data.elapsed_ms + " ms" : "");

    var risk = clear($("risk-level"));
    risk.className = "risk " + t.risk_level.id;
    risk.dataset.level = t.risk_level.id;
    risk.appendChild(document.createTextNode(t.risk_level.name));
    $("risk-reason").textContent = t.risk_level.reason || "";

    var review = $("review");
    if (plan.review) {
      clear(review);
      review.appendChild(el("strong", null, "需人工复核："));
      var reasons = (plan.review_reasons || []).slice();
      (t.uncertain || []).forEach(function (h) {
        if (!reasons.some(function (r) { return r.indexOf(h) >= 0; })) reasons.push((HEAD[h] || h) + " 把握不足");
      });
      review.appendChild(document.createTextNode(reasons.join("；")));
      review.hidden = false;
    } else {
      review.hidden = true;
    }

    $("owner").textContent = (OWNER[plan.owner] || plan.owner) + "";
    $("departments").textContent = plan.departments.length
      ? "协同部门：" + plan.departments.map(function (d) { return DEPT[d] || d; }).join("、") : "无需协同部门";

    var due = clear($("deadlines")), r = plan.reply_due;
    if (r.first_reply_hours !== null && r.first_reply_hours !== undefined) due.appendChild(el("li", null, "首次回复：" + r.first_reply_hours + " 小时内"));
    if (r.decision_due) due.appendChild(el("li", null, "处理决定：" + r.decision_due + " 前" + (r.decision_days ? "（" + r.decision_days + " 日）" : "")));
    if (r.complex_due) due.appendChild(el("li", "muted", "复杂案件最迟 " + r.complex_due));
    if (r.extended_due) due.appendChild(el("li", "muted", "经批准延长最迟 " + r.extended_due));
    if (r.customer_deadline_days !== null && r.customer_deadline_days !== undefined) due.appendChild(el("li", null, "客户给的期限：" + r.customer_deadline_days + " 天"));

    var flags = clear($("flags")), needles = [];
    if (!t.risk_flags.length) flags.appendChild(el("li", "muted", "无风险标记"));
    t.risk_flags.forEach(function (f) {
      var li = el("li", "flag");
      li.dataset.flag = f.id;
      li.appendChild(el("span", "name", f.name));
      li.appendChild(el("span", "muted", " " + (f.said_outright ? "原文明说" : pct(f.proba))));
      var ev = el("div", "ev");
      if (f.evidence.length) {
        ev.appendChild(el("span", "muted", "依据："));
        f.evidence.forEach(function (e) { ev.appendChild(el("mark", null, e.text)); needles.push(e.as_written || e.text); });
      } else {
        ev.appendChild(el("span", "muted", "（模型判断，无直接词语依据）"));
      }
      li.appendChild(ev);
      flags.appendChild(li);
    });

    var causes = clear($("causes"));
    t.cause.forEach(function (c) { causes.appendChild(bar(c.name, c.proba)); });
    var mind = clear($("mindset"));
    if (!t.mindset.length) mind.appendChild(el("li", "muted", "无"));
    t.mindset.forEach(function (m) { mind.appendChild(bar(m.name, m.proba)); });

    function checklist(id, items, start) {
      var list = clear($(id));
      list.start = start;
      items.forEach(function (s) {
        var li = el("li");
        li.dataset.step = s.id;
        var box = el("input");
        box.type = "checkbox";
        box.setAttribute("aria-label", "完成");
        box.addEventListener("change", function () { li.classList.toggle("done", box.checked); });
        li.appendChild(box);
        li.appendChild(el("span", "step-text", s.text));
        list.appendChild(li);
      });
    }
    checklist("plan-now", plan.now || [], 1);
    checklist("plan-then", plan.then || [], (plan.now || []).length + 1);
    $("plan-then-title").hidden = !(plan.then || []).length;
    var ref = plan.reference || [];
    $("plan-reference").hidden = !ref.length;
    $("plan-reference").open = false;
    $("plan-reference-line").textContent = "一般流程：" + ref.map(function (s) { return s.short || s.text.slice(0, 8); }).join(" → ");
    var refList = clear($("plan-reference-steps"));
    ref.forEach(function (s) { refList.appendChild(el("li", null, s.text)); });

    var avoid = clear($("avoid"));
    if (!plan.avoid.length) avoid.appendChild(el("li", "muted", "无"));
    plan.avoid.forEach(function (a) { avoid.appendChild(el("li", null, a.text)); });

    var facts = clear($("facts"));
    if (!data.facts.length) facts.appendChild(el("li", "muted", "无"));
    data.facts.forEach(function (f) { facts.appendChild(el("li", null, (FACT[f.kind] || f.kind) + "：" + f.text)); });

    clear($("note-view")).appendChild(highlighted(text, needles));
    $("note-view-wrap").hidden = false;
    $("result").hidden = false;
  }

  // What the server said, in words a handler reads: the status in Chinese first, the server's own text
  // (for IT) after it; the case store being off is said in Chinese alone.
  var STATUS = { 400: "输入有误", 401: "未登录或登录已过期", 403: "没有权限", 404: "找不到", 409: "与已有记录冲突",
                 413: "内容过长", 415: "格式不支持", 422: "输入有误", 429: "请求过于频繁，请稍后再试",
                 503: "服务暂不可用", 504: "服务超时，请稍后再试" };
  function message(body, status) {
    var detail = "";
    if (body && Array.isArray(body.detail)) detail = body.detail.map(function (d) { return d.msg; }).join("；");
    else if (body && body.detail) detail = String(body.detail);
    if (status === 503 && detail.indexOf("case store") >= 0)
      return "案件库未开启或无法打开（服务以不存案件的方式启动），队列、纠正和一致率暂不可用";
    var said = STATUS[status] || (status >= 500 ? "服务出错" : "请求失败");
    return detail ? said + "（" + detail + "）" : said + "（" + status + "）";
  }

  // The page's login: with tokens configured, a token is exchanged once for an HttpOnly session cookie
  // (the page never keeps the token); every POST then carries the session's CSRF token.
  var session = { auth: "none", user: null, csrf: null };

  // One place for fetch + JSON + the server's error text (FastAPI puts it in "detail").
  function api(method, url, body, headers) {
    var init = { method: method, headers: headers || {}, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET" && session.csrf) init.headers["X-CSRF-Token"] = session.csrf;
    return fetch(url, init).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (data) {
        if (resp.status === 401 && url !== "/v1/session") showLogin("登录已过期，请重新登录。");
        if (!resp.ok) throw new Error(message(data, resp.status));
        return data;
      });
    });
  }

  function showLogin(why) {
    $("workspace").hidden = true;
    $("tabs").hidden = true;
    $("login").hidden = false;
    $("logout-button").hidden = true;
    $("session-user").hidden = true;
    $("login-error").textContent = why || "";
    $("login-error").hidden = !why;
    $("login-token").focus();
  }

  function useSession(s) {
    session = s;
    $("login").hidden = true;
    $("workspace").hidden = false;
    var named = s.auth === "session" && s.user;
    $("session-user").textContent = named ? "已登录：" + s.user : "";
    $("session-user").hidden = !named;
    $("logout-button").hidden = !named;
    $("tabs").hidden = false;
    if (named) {  // with tokens the author of a correction is the token's name, nothing else
      ["fix-author", "lab-author"].forEach(function (id) { $(id).value = s.user; $(id).readOnly = true; });
    }
  }

  function login(ev) {
    ev.preventDefault();
    var token = $("login-token").value.trim();
    if (!token) return;
    $("login-submit").disabled = true;
    api("POST", "/v1/session", { token: token })
      .then(function (s) { $("login-token").value = ""; useSession(s); start(); })
      .catch(function (e) { showLogin("登录失败：" + e.message); })
      .then(function () { $("login-submit").disabled = false; });
  }

  function logout() {
    api("POST", "/v1/session/logout", {}).catch(function () { return null; })
      .then(function () { session = { auth: "none", user: null, csrf: null }; showLogin(""); });
  }

  function triage() {
    var text = $("note").value;
    var err = $("error");
    err.hidden = true;
    if (!text.trim()) { err.textContent = "请先输入投诉内容。"; err.hidden = false; return; }
    var payload = { text: text };
    if ($("received").value) payload.received = $("received").value;
    var btn = $("triage-button");
    btn.disabled = true;
    $("status").textContent = "分诊中…";
    api("POST", "/v1/triage", payload)
      .then(function (data) {
        $("note-view-title").textContent = "原文（标出风险依据）";
        render(data, text);
        $("status").textContent = "";
        afterTriage(data);
      })
      .catch(function (e) { err.textContent = "分诊失败：" + e.message; err.hidden = false; $("status").textContent = ""; })
      .then(function () { btn.disabled = false; });
  }

  // Every triage is a stored case: open it for correction and show it in the queue.
  function afterTriage(data) {
    if (!data.stored) {
      $("case-panel").hidden = true;
      $("status").textContent = "本次分诊未存入案件库，暂不能纠正。";
      return;
    }
    openCase(data.case_id);
    loadQueue();
  }

  // ---------------------------------------------------------------- labels (GET /v1/taxonomy)

  var SVG = "http://www.w3.org/2000/svg";
  var HEADS = ["cause", "risk_level", "risk_flags", "mindset"];
  var HEAD_NAME = { cause: "原因", risk_level: "风险等级", risk_flags: "风险标记", mindset: "客户心理" };
  var CHANNEL = { page: "页面", api: "接口", cli: "命令行" };
  var AUTHOR_KEY = "tousu.author";
  var tax = null;    // {causes, risk_levels, risk_flags, mindsets} from the service
  var names = {};    // head -> {id: Chinese name}

  function byId(list) {
    var out = {};
    list.forEach(function (x) { out[x.id] = x.name; });
    return out;
  }

  function loadTaxonomy() {
    return api("GET", "/v1/taxonomy").then(function (t) {
      tax = t;
      names = { cause: byId(t.causes), risk_level: byId(t.risk_levels), risk_flags: byId(t.risk_flags),
        mindset: byId(t.mindsets) };
      buildForm();
    });
  }

  function labelName(head, id) { return (names[head] && names[head][id]) || id; }
  function labelText(head, value) {
    if (Array.isArray(value)) return value.length ? value.map(function (v) { return labelName(head, v); }).join("、") : "无";
    return value ? labelName(head, value) : "无";
  }

  function showError(id, text) { var e = $(id); e.textContent = text; e.hidden = !text; }

  // Stored times are naive UTC; show them in the handler's own time zone.
  function when(iso) {
    if (!iso) return "";
    var d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
    if (isNaN(d)) return iso;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function option(value, text) { var o = el("option", null, text); o.value = value; return o; }

  // A checkbox or radio with its Chinese label; the id goes in value so the form reads back ids.
  function choice(type, name, value, text) {
    var label = el("label", "choice");
    var input = el("input");
    input.type = type;
    input.name = name;
    input.value = value;
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + text));
    label.title = value;
    return label;
  }

  // ---------------------------------------------------------------- the correction form

  // The case the panel is showing. `order` keeps each list head in the order the store holds it
  // (main first, then by probability) plus newly ticked ids at the end: an untouched head must
  // read back exactly as stored, or the audit would record a change the handler never made.
  var current = { caseId: null, status: "open", labels: null, order: { causes: [], flags: [] } };

  function groupedCauseOptions(select) {
    var groups = {};
    tax.causes.forEach(function (c) {
      if (!groups[c.group]) {
        groups[c.group] = el("optgroup");
        groups[c.group].label = c.group_name;
        select.appendChild(groups[c.group]);
      }
      groups[c.group].appendChild(option(c.id, c.name));
    });
  }

  function buildForm() {
    groupedCauseOptions($("fix-main-cause"));

    // Secondary causes: checkboxes under their group names (easier than a ctrl-click multi-select).
    var box = clear($("fix-other-causes")), lastGroup = null;
    tax.causes.forEach(function (c) {
      if (c.group !== lastGroup) { box.appendChild(el("div", "group", c.group_name)); lastGroup = c.group; }
      box.appendChild(choice("checkbox", "fix-other-cause", c.id, c.name));
    });

    riskAndFlagChoices("fix", tax.risk_levels, null);

    ["fix-main-mindset", "fix-second-mindset", "lab-main-mindset", "lab-second-mindset"].forEach(function (id) {
      var s = clear($(id));
      s.appendChild(option("", "无"));
      tax.mindsets.forEach(function (m) { s.appendChild(option(m.id, m.name)); });
    });
    buildLabellingForm();
  }

  function checkedValues(container) {
    return Array.prototype.map.call(container.querySelectorAll("input:checked"), function (i) { return i.value; });
  }

  function setChecked(container, values) {
    Array.prototype.forEach.call(container.querySelectorAll("input"), function (i) { i.checked = values.indexOf(i.value) >= 0; });
  }

  // Follow a checkbox list: keep the known order, drop unticked ids, append newly ticked ones.
  function follow(order, container) {
    var now = checkedValues(container);
    var kept = order.filter(function (v) { return now.indexOf(v) >= 0; });
    now.forEach(function (v) { if (kept.indexOf(v) < 0) kept.push(v); });
    return kept;
  }

  // The main cause cannot also be a secondary one, and at most two secondary causes fit the label format.
  function syncCauses() {
    var main = $("fix-main-cause").value, box = $("fix-other-causes");
    current.order.causes = follow(current.order.causes, box).filter(function (c) { return c !== main; });
    var full = current.order.causes.length >= 2;
    Array.prototype.forEach.call(box.querySelectorAll("input"), function (i) {
      if (i.value === main) i.checked = false;
      i.disabled = i.value === main || (full && !i.checked);
      i.parentNode.classList.toggle("is-main", i.value === main);
    });
    $("fix-other-summary").textContent = current.order.causes.length ? labelText("cause", current.order.causes) : "无";
  }

  // A second mindset only makes sense after a main one, and not the same one twice.
  function syncMindset() { syncMindsetPair("fix-main-mindset", "fix-second-mindset"); }

  function syncMindsetPair(mainId, secondId) {
    var main = $(mainId).value, second = $(secondId);
    if (!main || second.value === main) second.value = "";
    second.disabled = !main;
    Array.prototype.forEach.call(second.options, function (o) { o.disabled = !!o.value && o.value === main; });
  }

  function fillForm(labels, status) {
    var causes = labels.cause || [];
    $("fix-main-cause").value = causes[0] || "";
    current.order.causes = causes.slice(1);
    setChecked($("fix-other-causes"), current.order.causes);
    syncCauses();
    Array.prototype.forEach.call(document.querySelectorAll('input[name="fix-risk"]'), function (r) {
      r.checked = r.value === labels.risk_level;
    });
    current.order.flags = (labels.risk_flags || []).slice();
    setChecked($("fix-flags"), current.order.flags);
    var mind = labels.mindset || [];
    $("fix-main-mindset").value = mind[0] || "";
    $("fix-second-mindset").value = mind[1] || "";
    syncMindset();
    $("fix-resolved").checked = status === "resolved";
    $("fix-comment").value = "";
  }

  // What the handler sees in the form, as the four label heads.
  function readForm() {
    var risk = document.querySelector('input[name="fix-risk"]:checked');
    var mindset = [$("fix-main-mindset").value, $("fix-second-mindset").value].filter(function (m, i, all) {
      return m && all.indexOf(m) === i;
    });
    return {
      cause: [$("fix-main-cause").value].concat(current.order.causes).slice(0, 3),
      risk_level: risk ? risk.value : "",
      risk_flags: current.order.flags.slice(),
      mindset: mindset
    };
  }

  function caseMeta(c) {
    var parts = [c.status === "resolved" ? "已解决" + (c.resolved_by ? "（" + c.resolved_by + "，" + when(c.resolved_at) + "）" : "") : "未解决"];
    parts.push(c.corrected_by ? "标签由 " + c.corrected_by + " 于 " + when(c.corrected_at) + " 纠正" : "尚未纠正：表单为模型预测");
    parts.push("受理 " + (c.received_on || when(c.created_at)));
    return parts.join(" · ");
  }

  // Open a stored case in the panel; `andRender` also lays out its latest triage (from the queue).
  function openCase(caseId, andRender) {
    return api("GET", "/v1/cases/" + encodeURIComponent(caseId)).then(function (c) {
      var latest = c.triages[c.triages.length - 1];
      if (andRender && latest) {
        $("note-view-title").textContent = "存档原文（已脱敏，标出风险依据）";
        render(Object.assign({ model_version: latest.model_version, elapsed_ms: null }, latest.result), latest.text_masked);
      }
      // uncorrected: the form starts from the latest prediction, exactly what the store would compare with
      current.caseId = c.case_id;
      current.status = c.status;
      current.labels = c.labels || (latest && latest.predicted) || { cause: [], risk_level: "", risk_flags: [], mindset: [] };
      $("case-id").textContent = c.case_id;
      $("case-meta").textContent = caseMeta(c);
      fillForm(current.labels, c.status);
      renderHistory(c.corrections);
      showResult("", false);
      $("case-panel").hidden = false;
      markQueueSelection();
      return c;
    });
  }

  // The one line under a form that says what saving did (or why it could not).
  function showMessage(id, text, isError) {
    var box = $(id);
    box.textContent = text;
    box.className = isError ? "error" : "saved";
    box.hidden = !text;
  }

  function showResult(text, isError) { showMessage("fix-result", text, isError); }

  function savedMessage(done) {
    var msg = done.changed.length
      ? "已保存：改动了 " + done.changed.map(function (h) { return HEAD_NAME[h] || h; }).join("、")
      : "已保存：标签未改动（确认了当前标签）";
    if (done.status !== current.status) msg += done.status === "resolved" ? "；案件已标记为已解决" : "；案件已重新打开";
    return msg;
  }

  function rememberAuthor(name) {
    try { window.localStorage.setItem(AUTHOR_KEY, name); } catch (e) { /* private mode: just not remembered */ }
    // one handler, one name: the correction form and the labelling queue show the same
    ["fix-author", "lab-author"].forEach(function (id) { if ($(id).value.trim() !== name) $(id).value = name; });
  }

  function submitCorrection(ev) {
    ev.preventDefault();
    var author = $("fix-author").value.trim();
    if (!author) {
      showResult("请先填写处理人姓名：每条纠正都要记录是谁改的。", true);
      $("fix-author").focus();
      return;
    }
    rememberAuthor(author);
    var body = readForm();
    // resolved only when the checkbox differs from the case: otherwise the audit would log a re-open of an open case
    var resolved = $("fix-resolved").checked;
    if (resolved !== (current.status === "resolved")) body.resolved = resolved;
    var comment = $("fix-comment").value.trim();
    if (comment) body.comment = comment;
    var caseId = current.caseId, btn = $("fix-submit");
    btn.disabled = true;
    showResult("保存中…", false);
    // header values must be ISO-8859-1, so a Chinese name travels percent-encoded (the service unquotes it)
    api("POST", "/v1/cases/" + encodeURIComponent(caseId) + "/labels", body,
      { "X-Tousu-User": encodeURIComponent(author), "X-Tousu-Channel": "page" })
      .then(function (done) {
        var msg = savedMessage(done);
        return openCase(caseId).then(function () {
          showResult(msg, false);
          loadQueue();
          loadAgreement();
        });
      })
      .catch(function (e) { showResult("保存失败：" + e.message, true); })
      .then(function () { btn.disabled = false; });
  }

  function wireCorrection() {
    try {
      $("fix-author").value = $("lab-author").value = window.localStorage.getItem(AUTHOR_KEY) || "";
    } catch (e) { /* no storage */ }
    $("fix-author").addEventListener("change", function () { rememberAuthor($("fix-author").value.trim()); });
    $("fix-main-cause").addEventListener("change", syncCauses);
    $("fix-other-causes").addEventListener("change", syncCauses);
    $("fix-flags").addEventListener("change", function () { current.order.flags = follow(current.order.flags, $("fix-flags")); });
    $("fix-main-mindset").addEventListener("change", syncMindset);
    $("fix-form").addEventListener("submit", submitCorrection);
  }

  // ---------------------------------------------------------------- correction history

  function historyItem(c) {
    var li = el("li", "history-item");
    li.dataset.correction = c.id;
    var head = el("div", "who");
    head.appendChild(el("strong", null, c.author));
    head.appendChild(el("span", "muted", " " + when(c.created_at) + " · " + (CHANNEL[c.channel] || c.channel)));
    li.appendChild(head);
    var what = [];
    if (c.after) what.push(c.changed.length ? "改动了 " + c.changed.map(function (h) { return HEAD_NAME[h] || h; }).join("、") : "确认标签，未改动");
    if (c.resolved === true) what.push("标记为已解决");
    if (c.resolved === false) what.push("重新打开");
    li.appendChild(el("div", null, what.join("；")));
    if (c.after) {
      var diff = el("ul", "diff");
      c.changed.forEach(function (h) {
        diff.appendChild(el("li", null, HEAD_NAME[h] + "：" + labelText(h, c.before[h]) + " → " + labelText(h, c.after[h])));
      });
      if (c.changed.length) li.appendChild(diff);
    }
    if (c.comment) li.appendChild(el("div", "comment", "备注：" + c.comment));
    return li;
  }

  function renderHistory(corrections) {
    var list = clear($("fix-history"));
    if (!corrections.length) { list.appendChild(el("li", "muted", "暂无纠正记录")); return; }
    corrections.slice().reverse().forEach(function (c) { list.appendChild(historyItem(c)); });  // newest first
  }

  // ---------------------------------------------------------------- the case queue (GET /v1/cases)

  var queue = { cursor: null, next: null };

  function queueQuery(cursor) {
    var q = ["limit=20"];
    [["risk_level", "queue-risk"], ["status", "queue-status"], ["corrected", "queue-corrected"]].forEach(function (p) {
      if ($(p[1]).value) q.push(p[0] + "=" + encodeURIComponent($(p[1]).value));
    });
    if (cursor) q.push("cursor=" + encodeURIComponent(cursor));
    return "/v1/cases?" + q.join("&");
  }

  function queueItem(c) {
    var li = el("li", "queue-item");
    li.dataset.case = c.case_id;
    li.tabIndex = 0;
    li.setAttribute("role", "button");
    var top = el("div", "top");
    top.appendChild(el("span", "badge " + c.risk_level, labelName("risk_level", c.risk_level)));
    top.appendChild(el("span", "cause", labelName("cause", c.main_cause)));
    top.appendChild(el("span", "state " + c.status, c.status === "resolved" ? "已解决" : "未解决"));
    li.appendChild(top);
    var snippet = (c.text || "").replace(/\s+/g, " ");
    li.appendChild(el("div", "snippet", snippet.length > 60 ? snippet.slice(0, 60) + "…" : snippet));
    li.appendChild(el("div", "muted", c.case_id + " · " + when(c.updated_at) +
      (c.corrected_by ? " · 纠正人 " + c.corrected_by : " · 未纠正")));
    function pick() {
      openCase(c.case_id, true).catch(function (e) { showError("queue-error", "打开案件失败：" + e.message); });
    }
    li.addEventListener("click", pick);
    li.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
    return li;
  }

  function markQueueSelection() {
    Array.prototype.forEach.call($("queue-list").children, function (li) {
      li.classList.toggle("selected", li.dataset.case === current.caseId);
    });
  }

  function loadQueue(cursor) {
    if (!tax) return;  // names come from the taxonomy; loadTaxonomy() calls us when it is in
    showError("queue-error", "");
    api("GET", queueQuery(cursor)).then(function (page) {
      queue.cursor = cursor || null;
      queue.next = page.next_cursor;
      var list = clear($("queue-list"));
      if (!page.cases.length) list.appendChild(el("li", "muted", cursor ? "没有更多案件" : "没有符合条件的案件"));
      page.cases.forEach(function (c) { list.appendChild(queueItem(c)); });
      markQueueSelection();
      $("queue-next").hidden = !page.next_cursor;
      $("queue-first").hidden = !cursor;
      $("queue-info").textContent = page.cases.length ? "本页 " + page.cases.length + " 件" : "";
    }).catch(function (e) { showError("queue-error", "读取队列失败：" + e.message); });
  }

  function wireQueue() {
    ["queue-risk", "queue-status", "queue-corrected"].forEach(function (id) {
      $(id).addEventListener("change", function () { loadQueue(); });
    });
    $("queue-refresh").addEventListener("click", function () { loadQueue(queue.cursor); });
    $("queue-next").addEventListener("click", function () { if (queue.next) loadQueue(queue.next); });
    $("queue-first").addEventListener("click", function () { loadQueue(); });
  }

  // ---------------------------------------------------------------- agreement chart (GET /v1/stats/agreement)

  var CHART = { w: 560, h: 220, left: 40, right: 10, top: 22, bottom: 34, maxPeriods: 12 };

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function chartAxes(root, plotH) {
    [0, 0.5, 1].forEach(function (v) {
      var y = CHART.top + plotH * (1 - v);
      root.appendChild(svg("line", { x1: CHART.left, x2: CHART.w - CHART.right, y1: y, y2: y, "class": "grid-line" }));
      root.appendChild(svg("text", { x: CHART.left - 6, y: y + 4, "class": "axis", "text-anchor": "end" }, Math.round(v * 100) + "%"));
    });
  }

  // Grouped bars: one group per period, one bar per head; with a handful of weeks bars read better than lines.
  function chartPeriod(root, p, i, slot, plotH) {
    var x0 = CHART.left + slot * i, barW = Math.min(18, (slot - 10) / HEADS.length);
    var start = x0 + (slot - barW * HEADS.length) / 2;
    HEADS.forEach(function (h, j) {
      var v = p.agree[h] || 0, hgt = Math.max(1, plotH * v);
      var bar = svg("rect", { x: start + j * barW, y: CHART.top + plotH - hgt, width: barW - 2, height: hgt,
        "class": "point head-" + h, "data-head": h, "data-period": p.period, "data-value": v });
      bar.appendChild(svg("title", {}, p.period + " 起 · " + HEAD_NAME[h] + " " + pct(v) + "（" + p.n + " 件）"));
      root.appendChild(bar);
    });
    var mid = x0 + slot / 2;
    root.appendChild(svg("text", { x: mid, y: CHART.top - 6, "class": "axis n", "text-anchor": "middle" }, "n=" + p.n));
    root.appendChild(svg("text", { x: mid, y: CHART.h - CHART.bottom + 16, "class": "axis", "text-anchor": "middle" }, p.period.slice(5)));
  }

  function drawChart(periods) {
    var plotH = CHART.h - CHART.top - CHART.bottom;
    var root = svg("svg", { viewBox: "0 0 " + CHART.w + " " + CHART.h, role: "img", "aria-label": "模型与处理人一致率" });
    chartAxes(root, plotH);
    var shown = periods.slice(-CHART.maxPeriods), slot = (CHART.w - CHART.left - CHART.right) / Math.max(shown.length, 1);
    shown.forEach(function (p, i) { chartPeriod(root, p, i, slot, plotH); });
    root.appendChild(svg("text", { x: CHART.w - CHART.right, y: CHART.h - 4, "class": "axis", "text-anchor": "end" }, "周（周一起）"));
    return root;
  }

  function drawLegend(overall) {
    var legend = clear($("agreement-legend"));
    HEADS.forEach(function (h) {
      var li = el("li");
      li.appendChild(el("span", "swatch head-" + h));
      li.appendChild(document.createTextNode(HEAD_NAME[h] + (overall.n ? " " + pct(overall.agree[h]) : "")));
      legend.appendChild(li);
    });
  }

  function loadAgreement() {
    api("GET", "/v1/stats/agreement?by=week").then(function (stats) {
      var box = clear($("agreement-chart"));
      if (!stats.periods.length) {
        box.appendChild(el("div", "muted empty", "暂无纠正记录"));
        clear($("agreement-legend"));
        $("agreement-overall").textContent = "";
        return;
      }
      box.appendChild(drawChart(stats.periods));
      drawLegend(stats.overall);
      $("agreement-overall").textContent = "共 " + stats.overall.n + " 件已纠正案件；图例中为总体一致率。";
    }).catch(function (e) {
      clear($("agreement-chart")).appendChild(el("div", "error", "读取一致率失败：" + e.message));
    });
  }

  // ---------------------------------------------------------------- views: handler, supervisor, labelling (#hash)

  var VIEWS = ["handler", "supervisor", "labelling"];
  var viewName = "handler";

  function route() {
    var want = (window.location.hash || "").replace("#", "");
    viewName = VIEWS.indexOf(want) >= 0 ? want : "handler";
    VIEWS.forEach(function (v) { $(v + "-view").hidden = v !== viewName; });
    Array.prototype.forEach.call(document.querySelectorAll("#tabs a"), function (a) {
      a.classList.toggle("active", a.dataset.view === viewName);
      if (a.dataset.view === viewName) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    if (!tax) return;  // start() routes again once the label names are in
    if (viewName === "supervisor" && !sup.loaded) loadSupervisor();
    if (viewName === "labelling" && !lab.loaded) loadLabelling();
  }

  // From the supervisor's queue or an alert to the case, in the handler's view.
  function openInHandler(caseId) {
    window.location.hash = "#handler";
    openCase(caseId, true).then(function () { $("case-panel").scrollIntoView(); })
      .catch(function (e) { showError("queue-error", "打开案件失败：" + e.message); });
  }

  // ---------------------------------------------------------------- supervisor (GET /v1/supervisor)

  var sup = { loaded: false };

  function dueText(days) {
    if (days < 0) return { text: "已逾期 " + (-days) + " 天", cls: "late" };
    if (days === 0) return { text: "今天到期", cls: "late" };
    return { text: "还剩 " + days + " 天", cls: days <= 3 ? "soon" : "" };
  }

  function alertLine(a) {
    var li = el("li");
    if (a.kind === "spike") {
      li.appendChild(el("span", "kind", "激增"));
      var where = a.by ? a.by + "“" + a.value + "”" : "全中心";
      li.appendChild(document.createTextNode(where + " · " + a.cause_name + "：近 " + a.window.days + " 天 " + a.count +
        " 件，预期 " + a.baseline + " 件" + (a.ratio ? "（" + a.ratio + " 倍" : "（") + "，p = " + a.p_value + "）"));
    } else {
      li.appendChild(el("span", "kind", "重复投诉"));
      li.appendChild(document.createTextNode(a.value + " · " + a.count + " 件" +
        (a.first ? "（" + a.first + " 至 " + a.last + "）" : "") + "，主要原因：" + a.cause_name));
    }
    return li;
  }

  function caseChip(a) {
    var b = el("button", "chip");
    b.type = "button";
    b.dataset.case = a.value;
    var due = dueText(a.days_left);
    b.appendChild(document.createTextNode(a.value + " "));
    b.appendChild(el("span", due.cls, due.text));
    b.addEventListener("click", function () { openInHandler(a.value); });
    return b;
  }

  function drawAlerts(view) {
    var box = clear($("sup-alerts"));
    var alerts = view.alerts, deadlines = alerts.filter(function (a) { return a.kind === "deadline"; });
    var others = alerts.filter(function (a) { return a.kind !== "deadline"; });
    box.className = alerts.length ? "alerts" : "alerts none";
    box.appendChild(el("h3", null, alerts.length ? "预警（" + alerts.length + " 条）" : "预警：本期没有预警"));
    if (others.length) {
      var list = el("ul");
      others.forEach(function (a) { list.appendChild(alertLine(a)); });
      box.appendChild(list);
    }
    if (deadlines.length) {
      var late = deadlines.filter(function (a) { return a.overdue; }).length;
      var head = el("div");
      head.appendChild(el("span", "kind", "处理时限"));
      head.appendChild(document.createTextNode((late ? late + " 件已逾期，" : "") + (deadlines.length - late) +
        " 件 3 天内到期（未结案）"));
      box.appendChild(head);
      var chips = el("div", "chips");
      deadlines.slice(0, 16).forEach(function (a) { chips.appendChild(caseChip(a)); });
      if (deadlines.length > 16) chips.appendChild(el("span", "muted", "共 " + deadlines.length + " 件，其余见右侧队列"));
      box.appendChild(chips);
    }
    (view.notes || []).forEach(function (n) { box.appendChild(el("div", "muted", n)); });
  }

  function stat(cls, label, value, note) {
    var d = el("div", "stat " + cls);
    d.appendChild(el("span", null, label));
    d.appendChild(el("b", null, String(value)));
    if (note) d.appendChild(el("span", "muted", note));
    return d;
  }

  function drawCards(view) {
    var box = clear($("sup-cards"));
    box.appendChild(stat("", "案件", view.n));
    ["high", "medium", "low"].forEach(function (lvl) {
      var n = (view.risk || {})[lvl] || 0;
      box.appendChild(stat(lvl, labelName("risk_level", lvl), n, view.n ? Math.round(100 * n / view.n) + "%" : ""));
    });
    box.appendChild(stat("late", "已逾期未结", view.queue.overdue));
  }

  function showChart(id, uri) {
    var img = $(id);
    if (uri) img.src = uri; else img.removeAttribute("src");
    img.hidden = !uri;
  }

  function queueRow(q) {
    var tr = el("tr");
    tr.dataset.case = q.case_id;
    tr.tabIndex = 0;
    var due = dueText(q.days_left), cell = el("td", "due");
    cell.appendChild(el("div", due.cls, due.text));
    cell.appendChild(el("div", "muted", q.due));
    tr.appendChild(cell);
    var lvl = el("td");
    lvl.appendChild(el("span", "badge " + q.risk_level, labelName("risk_level", q.risk_level)));
    tr.appendChild(lvl);
    tr.appendChild(el("td", null, q.cause_name));
    var what = el("td");
    what.appendChild(el("code", null, q.case_id));
    what.appendChild(el("div", "snippet", q.text));
    tr.appendChild(what);
    tr.addEventListener("click", function () { openInHandler(q.case_id); });
    tr.addEventListener("keydown", function (e) { if (e.key === "Enter") openInHandler(q.case_id); });
    return tr;
  }

  function drawQueue(view) {
    var body = clear($("sup-queue").tBodies[0]), q = view.queue;
    if (!q.cases.length) {
      var tr = el("tr"), td = el("td", "muted", "没有未结案件");
      td.colSpan = 4;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    q.cases.forEach(function (c) { body.appendChild(queueRow(c)); });
    $("sup-queue-info").textContent = "未结 " + q.total + " 件" + (q.overdue ? "，其中已逾期 " + q.overdue + " 件" : "") +
      (q.total > q.cases.length ? "；显示最急的 " + q.cases.length + " 件" : "");
  }

  function loadSupervisor() {
    sup.loaded = true;
    showError("sup-error", "");
    $("sup-meta").textContent = "读取中…";
    return api("GET", "/v1/supervisor").then(function (view) {
      var p = view.period || {};
      $("sup-meta").textContent = "案件库 " + view.n + " 件" + (p.start ? " · " + p.start + " 至 " + p.end : "") +
        (view.as_of ? " · 预警截至 " + view.as_of : "") + " · 期限按 " + view.today + " 计";
      drawAlerts(view);
      drawCards(view);
      showChart("sup-chart-groups", view.charts.groups);
      showChart("sup-chart-trend", view.charts.trend);
      showChart("sup-chart-causes", view.charts.causes);
      $("sup-no-trend").hidden = !!view.charts.trend || !view.n;
      drawQueue(view);
    }).catch(function (e) {
      sup.loaded = false;
      $("sup-meta").textContent = "";
      showError("sup-error", "读取主管视图失败：" + e.message);
    });
  }

  // ---------------------------------------------------------------- labelling queue (GET /v1/labelling)

  var RISK_KEYS = { high: "H", medium: "M", low: "L" };
  // items: the batch being walked; pos: the one shown; form: its labels as the handler has them now
  var lab = { loaded: false, items: [], pos: 0, skipped: [], saved: {}, done: 0, remaining: 0, busy: false,
    form: null };

  function buildLabellingForm() {
    var other = clear($("lab-other-cause"));
    other.appendChild(option("", "—"));
    groupedCauseOptions(other);
    riskAndFlagChoices("lab", tax.risk_levels.slice().reverse(), RISK_KEYS);
  }

  // The risk-level radios and flag boxes of a correction form (`fix` or `lab`); with `keys`, each level
  // shows its keyboard shortcut.
  function riskAndFlagChoices(prefix, levels, keys) {
    var risk = clear($(prefix + "-risk"));
    levels.forEach(function (r) {
      var c = choice("radio", prefix + "-risk", r.id, r.name);
      c.classList.add("risk-choice", r.id);
      if (keys) { c.insertBefore(el("kbd", null, keys[r.id] || ""), c.firstChild.nextSibling); }
      risk.appendChild(c);
    });
    var flags = clear($(prefix + "-flags"));
    tax.risk_flags.forEach(function (f) { flags.appendChild(choice("checkbox", prefix + "-flag", f.id, f.name)); });
  }

  function labProgress() {
    var total = lab.done + lab.remaining;
    $("lab-progress").textContent = "本次已标注 " + lab.done + " 件 · 跳过 " + lab.skipped.length + " 件 · 库中还剩 " +
      lab.remaining + " 件未标注";
    $("lab-bar").style.width = (total ? Math.round(100 * lab.done / total) : 0) + "%";
  }

  function labResult(text, isError) { showMessage("lab-result", text, isError); }

  // The top causes as rows: the number key makes one the main cause, the tick makes it a secondary one.
  function drawCandidates(item) {
    var list = clear($("lab-causes")), f = lab.form;
    item.causes.forEach(function (c, i) {
      var li = el("li", "cand" + (c.id === f.main ? " main" : ""));
      li.dataset.cause = c.id;
      li.appendChild(el("kbd", null, String(i + 1)));
      li.appendChild(el("span", "name", c.name || labelName("cause", c.id)));
      var track = el("span", "track"), fill = el("span", "fill");
      fill.style.width = Math.round(100 * (c.proba || 0)) + "%";
      track.appendChild(fill);
      li.appendChild(track);
      li.appendChild(el("span", "p", pct(c.proba)));
      var sec = el("label", "small"), box = el("input");
      box.type = "checkbox";
      box.checked = f.secondary.indexOf(c.id) >= 0;
      box.disabled = c.id === f.main || (!box.checked && f.secondary.length >= 2);
      box.addEventListener("click", function (e) { e.stopPropagation(); toggleSecondary(c.id); });
      sec.appendChild(box);
      sec.appendChild(document.createTextNode(c.id === f.main ? " 主要" : " 次要"));
      sec.addEventListener("click", function (e) { e.stopPropagation(); });
      li.appendChild(sec);
      li.addEventListener("click", function () { setMainCause(c.id); });
      list.appendChild(li);
    });
    var inTop = item.causes.some(function (c) { return c.id === f.main; });
    $("lab-other-cause").value = inTop ? "" : f.main;
  }

  function setMainCause(id) {
    var f = lab.form, item = lab.items[lab.pos];
    if (!id || !item) return;
    f.main = id;
    f.secondary = f.secondary.filter(function (c) { return c !== id; });
    drawCandidates(item);
  }

  function toggleSecondary(id) {
    var f = lab.form, at = f.secondary.indexOf(id);
    if (id === f.main) return;
    if (at >= 0) f.secondary.splice(at, 1); else if (f.secondary.length < 2) f.secondary.push(id);
    drawCandidates(lab.items[lab.pos]);
  }

  function setRisk(level) {
    Array.prototype.forEach.call(document.querySelectorAll('input[name="lab-risk"]'), function (r) { r.checked = r.value === level; });
  }

  function showItem() {
    var item = lab.items[lab.pos];
    $("lab-empty").hidden = true;
    $("lab-item").hidden = false;
    var labels = item.labels || {};
    lab.form = { main: (labels.cause || [])[0] || "", secondary: (labels.cause || []).slice(1),
      flags: (labels.risk_flags || []).slice() };
    $("lab-case").textContent = item.case_id;
    $("lab-text").textContent = item.text;
    $("lab-meta").textContent = "第 " + (lab.pos + 1) + " / " + lab.items.length + " 条 · 模型把握不足程度 " + item.uncertainty +
      " · 受理 " + (item.received_on || when(item.created_at)) + " · " + (item.status === "resolved" ? "已解决" : "未解决");
    drawCandidates(item);
    setRisk(labels.risk_level);
    $("lab-risk-reason").textContent = item.risk_reason ? "模型依据：" + item.risk_reason : "";
    setChecked($("lab-flags"), lab.form.flags);
    var mind = labels.mindset || [];
    $("lab-main-mindset").value = mind[0] || "";
    $("lab-second-mindset").value = mind[1] || "";
    syncMindsetPair("lab-main-mindset", "lab-second-mindset");
    labResult(lab.saved[item.case_id] ? "本条已保存；再保存会记为又一次纠正。" : "", false);
    $("lab-prev").disabled = lab.pos === 0;
  }

  function showEmpty() {
    $("lab-item").hidden = true;
    $("lab-empty").hidden = false;
    $("lab-empty-text").textContent = lab.skipped.length
      ? "没有更多待标注的案件了（跳过了 " + lab.skipped.length + " 件）。" : "没有待标注的案件了：库中的案件都已有处理人标签。";
    $("lab-unskip").hidden = !lab.skipped.length;
  }

  function fetchLabelling() {
    var q = ["limit=20"].concat(lab.skipped.slice(-400).map(function (id) { return "skip=" + encodeURIComponent(id); }));
    return api("GET", "/v1/labelling?" + q.join("&")).then(function (page) {
      lab.items = page.cases.filter(function (c) { return !lab.saved[c.case_id]; });
      lab.pos = 0;
      lab.remaining = page.remaining;
      labProgress();
      if (lab.items.length) showItem(); else showEmpty();
    });
  }

  function loadLabelling() {
    lab.loaded = true;
    showError("lab-error", "");
    $("lab-progress").textContent = "排序中…";
    return fetchLabelling().catch(function (e) {
      lab.loaded = false;
      showError("lab-error", "读取标注队列失败：" + e.message);
    });
  }

  function nextItem() {
    if (lab.pos + 1 < lab.items.length) { lab.pos += 1; showItem(); return Promise.resolve(); }
    return fetchLabelling().catch(function (e) { showError("lab-error", "读取标注队列失败：" + e.message); });
  }

  function skipItem() {
    var item = lab.items[lab.pos];
    if (!item || lab.busy) return;
    if (!lab.saved[item.case_id] && lab.skipped.indexOf(item.case_id) < 0) lab.skipped.push(item.case_id);
    labProgress();
    nextItem();
  }

  function prevItem() {
    if (lab.pos > 0 && !lab.busy) { lab.pos -= 1; showItem(); }
  }

  function readLabelling() {
    var risk = document.querySelector('input[name="lab-risk"]:checked'), f = lab.form;
    var mindset = [$("lab-main-mindset").value, $("lab-second-mindset").value].filter(function (m, i, all) {
      return m && all.indexOf(m) === i;
    });
    return { cause: [f.main].concat(f.secondary.filter(function (c) { return c !== f.main; })).slice(0, 3),
      risk_level: risk ? risk.value : "", risk_flags: f.flags.slice(), mindset: mindset };
  }

  function saveItem() {
    var item = lab.items[lab.pos];
    if (!item || lab.busy) return;
    var author = $("lab-author").value.trim();
    if (!author) {
      labResult("请先填写处理人姓名：每条标注都要记录是谁标的。", true);
      $("lab-author").focus();
      return;
    }
    rememberAuthor(author);
    lab.busy = true;
    $("lab-save").disabled = true;
    labResult("保存中…", false);
    api("POST", "/v1/cases/" + encodeURIComponent(item.case_id) + "/labels", readLabelling(),
      { "X-Tousu-User": encodeURIComponent(author), "X-Tousu-Channel": "page" })
      .then(function (done) {
        if (!lab.saved[item.case_id]) { lab.done += 1; lab.remaining = Math.max(0, lab.remaining - 1); }
        lab.saved[item.case_id] = true;
        lab.skipped = lab.skipped.filter(function (id) { return id !== item.case_id; });
        labProgress();
        var what = done.changed.length ? "改动了 " + done.changed.map(function (h) { return HEAD_NAME[h] || h; }).join("、")
          : "确认了模型的标签";
        return nextItem().then(function () { labResult("已保存 " + item.case_id + "：" + what, false); });
      })
      .catch(function (e) { labResult("保存失败：" + e.message, true); })
      .then(function () { lab.busy = false; $("lab-save").disabled = false; });
  }

  // Shortcuts work while the labelling view is shown, except while typing in a text box or a list.
  function labellingKey(e) {
    if (viewName !== "labelling" || $("lab-item").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target, tag = t && t.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && t.type !== "checkbox" && t.type !== "radio")) return;
    var item = lab.items[lab.pos], key = e.key.length === 1 ? e.key.toUpperCase() : e.key;
    var n = "123".indexOf(key);
    if (n >= 0 && item.causes[n]) setMainCause(item.causes[n].id);
    else if (key === "H" || key === "M" || key === "L") setRisk({ H: "high", M: "medium", L: "low" }[key]);
    else if (key === "Enter") saveItem();
    else if (key === "S" || key === "ArrowRight") skipItem();
    else if (key === "ArrowLeft") prevItem();
    else return;
    e.preventDefault();
  }

  function wireViews() {
    window.addEventListener("hashchange", route);
    $("sup-refresh").addEventListener("click", loadSupervisor);
    $("lab-save").addEventListener("click", saveItem);
    $("lab-skip").addEventListener("click", skipItem);
    $("lab-prev").addEventListener("click", prevItem);
    $("lab-unskip").addEventListener("click", function () { lab.skipped = []; loadLabelling(); });
    $("lab-other-cause").addEventListener("change", function () { setMainCause($("lab-other-cause").value); });
    $("lab-flags").addEventListener("change", function () { lab.form.flags = follow(lab.form.flags, $("lab-flags")); });
    $("lab-main-mindset").addEventListener("change", function () { syncMindsetPair("lab-main-mindset", "lab-second-mindset"); });
    $("lab-author").addEventListener("change", function () { rememberAuthor($("lab-author").value.trim()); });
    document.addEventListener("keydown", labellingKey);
    route();
  }

  function start() {
    loadTaxonomy()
      .then(function () { loadQueue(); loadAgreement(); route(); })
      .catch(function (e) { showError("queue-error", "读取标签表失败：" + e.message); });
  }

  $("triage-button").addEventListener("click", triage);
  $("note").addEventListener("keydown", function (e) { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) triage(); });
  $("login-form").addEventListener("submit", login);
  $("logout-button").addEventListener("click", logout);
  wireCorrection();
  wireQueue();
  wireViews();
  fetch("/v1/session", { credentials: "same-origin" }).then(function (resp) {
    if (resp.status === 401) { showLogin(""); return; }
    return resp.json().then(function (s) { useSession(s); start(); });
  }).catch(function (e) { showError("queue-error", "连接服务失败：" + e.message); });
})();
