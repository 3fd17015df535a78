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
  function pct(p) { return p === null || p === undefined ? "" : Math.round(p * 100) + "%"; }

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
    $("model-version").textContent = "模型 " + data.model_version + " · " + data.elapsed_ms + " ms";

    var risk = clear($("risk-level"));
    risk.className = "risk " + t.risk_level.id;
    risk.appendChild(document.createTextNode(t.risk_level.name + " "));
    risk.appendChild(el("span", "rid", t.risk_level.id));
    risk.title = "概率 " + pct(t.risk_level.proba);

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
      li.appendChild(el("span", "muted", " " + f.id + " " + pct(f.proba)));
      var ev = el("div", "ev");
      if (f.evidence.length) {
        ev.appendChild(el("span", "muted", "依据："));
        f.evidence.forEach(function (e) { ev.appendChild(el("mark", null, e.text)); needles.push(e.text); });
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

    var steps = clear($("steps"));
    plan.steps.forEach(function (s) {
      var li = el("li");
      li.dataset.section = SECTION[s.section] || s.section;
      li.dataset.step = s.id;
      var box = el("input");
      box.type = "checkbox";
      box.setAttribute("aria-label", "完成");
      box.addEventListener("change", function () { li.classList.toggle("done", box.checked); });
      li.appendChild(box);
      li.appendChild(el("span", "step-text", s.text));
      steps.appendChild(li);
    });

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

  function message(body, status) {
    if (body && Array.isArray(body.detail)) return body.detail.map(function (d) { return d.msg; }).join("；");
    if (body && body.detail) return String(body.detail);
    return "服务返回错误 " + status;
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
    fetch("/v1/triage", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) })
      .then(function (resp) {
        return resp.json().catch(function () { return null; }).then(function (body) {
          if (!resp.ok) throw new Error(message(body, resp.status));
          return body;
        });
      })
      .then(function (data) { render(data, text); $("status").textContent = ""; })
      .catch(function (e) { err.textContent = "分诊失败：" + e.message; err.hidden = false; $("status").textContent = ""; })
      .then(function () { btn.disabled = false; });
  }

  $("triage-button").addEventListener("click", triage);
  $("note").addEventListener("keydown", function (e) { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) triage(); });
})();
