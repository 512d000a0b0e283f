/* Trubka site widgets: a callback button and form, messenger links. Loaded by tracker.js after
   the page settled; fixed position in its own shadow root, so the page's layout never moves and
   its styles do not leak in. ES5, no dependencies; any failure leaves the page as it was. */
(function (w, d) {
  var W = /*WIDGET*/null, T = w.trubka;
  if (!W || !T || !T.v || w.trubkaWidget) return;
  w.trubkaWidget = 1;
  var X = W.t, base = T.b, vid = T.v;

  function post(path, body, done) {
    var x = new XMLHttpRequest();
    x.open('POST', base + path, true);
    x.setRequestHeader('Content-Type', 'text/plain');
    x.timeout = 10000;
    x.onload = function () {
      var r = null;
      try { r = JSON.parse(x.responseText); } catch (e) {}
      done(x.status, r || {});
    };
    x.onerror = x.ontimeout = function () { done(0, {}); };
    x.send(JSON.stringify(body));
  }
  function el(tag, attrs, text) {
    var e = d.createElement(tag);
    for (var k in attrs) if (attrs.hasOwnProperty(k)) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  function when(at) {
    try {
      return new Date(at).toLocaleString('ru-RU', {
        weekday: 'short', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit'
      });
    } catch (e) { return at; }
  }
  // The visitor's words for an answer of /ct/v1/callback.
  function said(status, r) {
    if (status == 200 && r.status == 'calling') return X.calling;
    if (status == 200) return X.scheduled.replace('{at}', when(r.at));
    if (r.reason == 'phone_invalid' || r.field == 'phone') return X.bad_phone;
    return X.refused;
  }
  function ask(phone, name, trap, out, done) {
    post('/ct/v1/callback', { visit_id: vid, phone: phone, name: name || null, website: trap || null },
      function (status, r) { out(said(status, r), status == 200); if (done) done(status == 200); });
  }

  // The site's own forms marked with the attribute send a callback request instead.
  function forms() {
    var list = d.querySelectorAll('form[' + W.f + ']');
    for (var i = 0; i < list.length; i++) {
      (function (f) {
        f.addEventListener('submit', function (e) {
          var p = f.querySelector('input[type=tel],input[name=phone]');
          if (!p) return;
          e.preventDefault();
          var n = f.querySelector('input[name=name]'), s = f.querySelector('[data-trubka-status]');
          ask(p.value, n && n.value, '', function (text) { if (s) s.textContent = text; });
        });
      })(list[i]);
    }
  }

  function css() {
    var c = W.c, side = W.p == 'left' ? 'left' : 'right';
    return ':host{all:initial}' +
      '.b{position:fixed;bottom:20px;' + side + ':20px;z-index:2147483000;display:flex;flex-direction:column;gap:8px;align-items:' + (side == 'left' ? 'flex-start' : 'flex-end') + ';font:15px/1.35 system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif}' +
      'button,.m{border:0;border-radius:24px;padding:12px 18px;cursor:pointer;font:inherit;font-weight:600;background:' + c.accent + ';color:' + c.text + ';text-decoration:none;box-shadow:0 4px 14px rgba(0,0,0,.2)}' +
      'button:focus-visible,.m:focus-visible,input:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}' +
      '.f{width:280px;max-width:calc(100vw - 40px);box-sizing:border-box;padding:16px;border-radius:12px;background:' + c.background + ';color:' + c.foreground + ';box-shadow:0 8px 30px rgba(0,0,0,.25)}' +
      '.f h2{margin:0 0 10px;font-size:17px}.f label{display:block;margin:8px 0 4px;font-size:13px}' +
      '.f input{box-sizing:border-box;width:100%;padding:10px;border:1px solid #8c959f;border-radius:8px;font:inherit;color:#1b1f24;background:#fff}' +
      '.f button{margin-top:12px;width:100%;border-radius:8px}.x{position:absolute;left:-10000px}' +
      '.f .c{float:right;background:none;color:inherit;box-shadow:none;padding:0 4px;margin:0;width:auto;font-size:20px;line-height:1}' +
      '.s{margin:10px 0 0;min-height:1em}[hidden]{display:none!important}';
  }

  function build() {
    // The host takes no room in the page's flow: nothing on the page moves.
    var host = el('div', { id: 'trubka-widget', style: 'position:fixed;width:0;height:0;margin:0;padding:0;border:0' }), root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var box = el('div', { 'class': 'b' }), style = el('style', {}, css());
    root.appendChild(style);
    root.appendChild(box);
    if (W.cb) {
      var form = el('form', { 'class': 'f', role: 'dialog', 'aria-labelledby': 'trubka-t', hidden: '' });
      var close = el('button', { type: 'button', 'class': 'c', 'aria-label': X.close }, '×');
      var title = el('h2', { id: 'trubka-t' }, X.title);
      var phone = el('input', { id: 'trubka-p', name: 'phone', type: 'tel', autocomplete: 'tel', required: '', inputmode: 'tel' });
      var name = el('input', { id: 'trubka-n', name: 'name', autocomplete: 'name' });
      // People never see this field; robots fill it in (the server refuses them).
      var trap = el('input', { name: 'website', tabindex: '-1', autocomplete: 'off', 'aria-hidden': 'true', 'class': 'x' });
      var send = el('button', { type: 'submit' }, X.submit);
      var status = el('p', { 'class': 's', role: 'status', 'aria-live': 'polite' });
      form.appendChild(close);
      form.appendChild(title);
      form.appendChild(el('label', { 'for': 'trubka-p' }, X.phone));
      form.appendChild(phone);
      form.appendChild(el('label', { 'for': 'trubka-n' }, X.name));
      form.appendChild(name);
      form.appendChild(trap);
      form.appendChild(send);
      form.appendChild(status);
      var open = el('button', { type: 'button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false' }, X.button);
      var toggle = function (show) {
        form.hidden = !show;
        open.setAttribute('aria-expanded', show ? 'true' : 'false');
        if (show) phone.focus(); else open.focus();
      };
      open.addEventListener('click', function () { toggle(form.hidden); });
      close.addEventListener('click', function () { toggle(false); });
      form.addEventListener('keydown', function (e) { if (e.key == 'Escape') toggle(false); });
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        send.disabled = true;
        ask(phone.value, name.value, trap.value, function (text) { status.textContent = text; },
          function (ok) { send.disabled = ok; });
      });
      box.appendChild(form);
      box.appendChild(open);
    }
    if (W.tg || W.wa) {
      post('/ct/v1/chat', { visit_id: vid }, function (s, r) {
        if (s != 200) return;
        if (r.telegram) box.insertBefore(el('a', { 'class': 'm', href: r.telegram, target: '_blank', rel: 'noopener' }, X.telegram), box.firstChild);
        if (r.whatsapp) box.insertBefore(el('a', { 'class': 'm', href: r.whatsapp, target: '_blank', rel: 'noopener' }, X.whatsapp), box.firstChild);
      });
    }
    d.body.appendChild(host);
  }

  try {
    forms();
    build();
  } catch (e) {}
})(window, document);
